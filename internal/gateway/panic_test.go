package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/gateway"
	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/runtime/httpwire"
)

// A panic while invoking (a bug in Stoke or a runtime) costs one request:
// recovered in Do as 500 Stoke.InternalError, or, outside Do, let through
// to the caller; either way the lease goes back (defer), so the next
// request on a one-instance pool with no queue is served, not throttled
// or left waiting for an instance held forever.
func TestPanicReleasesTheLease(t *testing.T) {
	f := newFixture(t, 5*time.Second)
	fn := f.function("a", "A", 5*time.Second, pool.Options{MaxInstances: 1, QueueSize: 0}, "/a")
	f.gw.Set([]*gateway.Function{fn})
	ok := func(ctx context.Context, inst runtime.Instance) error {
		return inst.Invoke(&httpwire.Capture{Limit: 1 << 10}, httptest.NewRequest("GET", "/a", nil).WithContext(ctx))
	}
	next := func(id string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out := f.gw.Run(ctx, gateway.Call{Function: "a", RequestID: id, Do: ok}); out.Err != nil {
			t.Fatalf("%s: the request after a panic: %d %s %v", id, out.Status, out.ErrorType, out.Err)
		}
	}
	next("warm")

	out := f.gw.Run(context.Background(), gateway.Call{Function: "a", RequestID: "in-do",
		Do: func(context.Context, runtime.Instance) error { panic("a bug in Do") }})
	if out.Status != http.StatusInternalServerError || out.ErrorType != "Stoke.InternalError" ||
		!strings.Contains(out.Message, "a bug in Do") || out.Record == nil || out.Record.Status != 500 {
		t.Errorf("panic in Do: %+v", out)
	}
	next("after-do")

	func() {
		defer func() {
			if p := recover(); p != "a bug in Ready" {
				t.Errorf("panic in Ready: recovered %v", p)
			}
		}()
		f.gw.Run(context.Background(), gateway.Call{Function: "a", RequestID: "in-ready", Do: ok,
			Ready: func(*record.Record) { panic("a bug in Ready") }})
		t.Error("a panic in Ready did not reach the caller")
	}()
	next("after-ready")
	if in := fn.Pool.(*pool.Pool).Instances(); len(in) > 1 {
		t.Errorf("instances: %+v", in)
	}
}
