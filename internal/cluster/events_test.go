package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/store"
)

// eventQueue is the Invoke API's view of a queue (invokeapi.Queue).
type eventQueue interface {
	Enqueue(ctx context.Context, it store.AsyncItem) (int64, error)
	Claim(ctx context.Context, now time.Time) (store.AsyncItem, bool, error)
	Complete(ctx context.Context, id int64, c store.Completion) error
}

// TestEventQueueKeepsTheAsyncSemantics runs one event's life through the
// cluster's JetStream queue and through one node's SQLite queue, and
// checks that both count the same: a throttle uses no attempt, a failed
// attempt does, the retry is not claimed before it is due, and the final
// failure is kept (in the cluster by the node that ran it) with its
// counts and error, to be retried by hand.
func TestEventQueueKeepsTheAsyncSemantics(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	nodes := testCluster(t, 1)
	q, err := nodes[0].EventQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var kept []store.AsyncItem
	q.Keep = func(_ context.Context, it store.AsyncItem) error {
		mu.Lock()
		kept = append(kept, it)
		mu.Unlock()
		return nil
	}
	for _, tc := range []struct {
		name string
		q    eventQueue
		// outcome is the event as its queue kept it once failed for good.
		outcome func() []store.AsyncItem
	}{
		{"sqlite", st, func() []store.AsyncItem {
			its, err := st.ListAsync(ctx, "f", store.AsyncFailed, 10)
			if err != nil {
				t.Fatal(err)
			}
			return its
		}},
		{"jetstream", q, func() []store.AsyncItem {
			mu.Lock()
			defer mu.Unlock()
			return append([]store.AsyncItem(nil), kept...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it := store.AsyncItem{Function: "f", Version: "1", Payload: []byte(`{"n":1}`), RequestID: "req-" + tc.name}
			if _, err := tc.q.Enqueue(ctx, it); err != nil {
				t.Fatal(err)
			}
			claim := func(what string) store.AsyncItem {
				t.Helper()
				deadline := time.Now().Add(10 * time.Second)
				for {
					got, ok, err := tc.q.Claim(ctx, time.Now())
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					if ok {
						return got
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: nothing claimed after 10 s", what)
					}
					time.Sleep(5 * time.Millisecond) // polling: SQLite's Claim does not wait
				}
			}
			first := claim("the first attempt")
			if first.Attempts != 1 || first.RequestID != it.RequestID || string(first.Payload) != `{"n":1}` {
				t.Fatalf("first claim: %+v", first)
			}
			// Throttled: back in 300 ms, without using an attempt.
			if err := tc.q.Complete(ctx, first.ID, store.Completion{Error: "no instance", RetryAt: time.Now().Add(300 * time.Millisecond), Throttled: true}); err != nil {
				t.Fatal(err)
			}
			throttledAt := time.Now()
			second := claim("after the throttle")
			if early := time.Since(throttledAt); early < 250*time.Millisecond {
				t.Errorf("claimed %s after the throttle; it was due after 300 ms", early)
			}
			if second.Attempts != 1 || second.Throttles != 1 {
				t.Errorf("after a throttle: attempts %d throttles %d, want 1 and 1", second.Attempts, second.Throttles)
			}
			// A failed attempt, retried at once: it counts.
			if err := tc.q.Complete(ctx, second.ID, store.Completion{Error: "Unhandled: boom", RetryAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			third := claim("the retry")
			if third.Attempts != 2 || third.Throttles != 1 || third.LastError != "Unhandled: boom" {
				t.Errorf("the retry: attempts %d throttles %d error %q, want 2, 1, Unhandled: boom", third.Attempts, third.Throttles, third.LastError)
			}
			// Failed for good: nothing left to claim, the outcome kept.
			if err := tc.q.Complete(ctx, third.ID, store.Completion{Error: "Unhandled: boom again"}); err != nil {
				t.Fatal(err)
			}
			if got, ok, err := tc.q.Claim(ctx, time.Now()); err != nil || ok {
				t.Fatalf("claimed after the final failure: %+v %v %v", got, ok, err)
			}
			var out []store.AsyncItem
			for _, o := range tc.outcome() {
				if o.RequestID == it.RequestID {
					out = append(out, o)
				}
			}
			if len(out) != 1 || out[0].Status != store.AsyncFailed || out[0].Attempts != 2 || out[0].Throttles != 1 || out[0].LastError != "Unhandled: boom again" {
				t.Fatalf("kept outcome: %+v", out)
			}
			// Completing an attempt twice is refused, not counted twice.
			if err := tc.q.Complete(ctx, third.ID, store.Completion{OK: true}); err == nil {
				t.Error("a second Complete of the same attempt was accepted")
			}
		})
	}

	// The cluster queue stores a retried Invoke once: the request id is
	// JetStream's message id.
	dup := store.AsyncItem{Function: "f", Version: "1", Payload: []byte(`{}`), RequestID: "req-dup"}
	for range 2 {
		if _, err := q.Enqueue(ctx, dup); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := q.Claim(ctx, time.Now())
	if err != nil || !ok || got.RequestID != "req-dup" {
		t.Fatalf("claiming the deduplicated event: %+v %v %v", got, ok, err)
	}
	if err := q.Complete(ctx, got.ID, store.Completion{OK: true}); err != nil {
		t.Fatal(err)
	}
	if again, ok, err := q.Claim(ctx, time.Now()); err != nil || ok {
		t.Fatalf("the same request id was stored twice: claimed %+v again (%v)", again, err)
	}
}

// An event is listed as running from its claim until its outcome is
// stored: a shutdown meanwhile would cut it off, so stoke events (and a
// test waiting for every event to end) must see it. Completing it twice
// is refused.
func TestRunningEventsListedUntilStored(t *testing.T) {
	ctx := context.Background()
	nodes := testCluster(t, 1)
	q, err := nodes[0].EventQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	storing, release := make(chan struct{}), make(chan struct{})
	q.Keep = func(context.Context, store.AsyncItem) error {
		close(storing)
		<-release
		return nil
	}
	if _, err := q.Enqueue(ctx, store.AsyncItem{Function: "f", Version: "1", Payload: []byte(`{}`), RequestID: "req-running"}); err != nil {
		t.Fatal(err)
	}
	var it store.AsyncItem
	waitFor(t, 10*time.Second, "the event to be claimed", func() bool {
		got, ok, err := q.Claim(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		it = got
		return ok
	})
	if run := q.Running("f"); len(run) != 1 || run[0].RequestID != "req-running" || run[0].Status != store.AsyncRunning {
		t.Fatalf("running after the claim: %+v", run)
	}
	if run := q.Running("g"); len(run) != 0 {
		t.Errorf("another function's running events: %+v", run)
	}
	done := make(chan error, 1)
	go func() { done <- q.Complete(ctx, it.ID, store.Completion{OK: true}) }()
	<-storing
	if run := q.Running("f"); len(run) != 1 {
		t.Errorf("while its outcome is stored: running %+v, want the event", run)
	}
	if err := q.Complete(ctx, it.ID, store.Completion{OK: true}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a second Complete while the first stores: %v, want ErrNotFound", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if run := q.Running("f"); len(run) != 0 {
		t.Errorf("running after its outcome was stored: %+v", run)
	}
}
