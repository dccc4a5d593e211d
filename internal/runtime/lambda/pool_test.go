package lambdart

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/runtime"
)

// Through a pool, an instance is handed a new invocation only once its
// bootstrap asked for one: back to back on one instance with no queue,
// none is throttled and no second instance starts; and one that panicked
// (aws-lambda-go reports, then exits) is never handed the next: that one
// waits for a new instance instead.
func TestPoolHandsOutOnlyAfterNext(t *testing.T) {
	checkNoLeaks(t)
	for _, name := range []string{"echo", "panic"} {
		t.Run(name, func(t *testing.T) {
			p := pool.New(pool.Options{Runtime: newRuntime(t, function(t, name), nil), MaxInstances: 1, QueueSize: 0})
			p.Start()
			t.Cleanup(p.Close)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			seen := map[string]bool{}
			for i := range 20 {
				l, err := p.Acquire(ctx)
				if err != nil {
					t.Fatalf("round %d: %v", i, err)
				}
				seen[l.InstanceID] = true
				res, err := l.Instance.(runtime.EventInstance).InvokeEvent(ctx, &runtime.Invocation{
					RequestID: "r-" + strconv.Itoa(i), Payload: []byte(`{}`), Deadline: time.Now().Add(10 * time.Second)})
				if err != nil {
					t.Fatalf("round %d: handed an instance that could not take it: %v", i, err)
				}
				if (name == "panic") != (res.FunctionError != "") {
					t.Fatalf("round %d: %+v", i, res)
				}
				l.Release()
			}
			want := 1
			if name == "panic" {
				want = 20 // each panic ends its instance
			}
			if len(seen) != want {
				t.Errorf("%d instances served 20 invocations, want %d", len(seen), want)
			}
		})
	}
}
