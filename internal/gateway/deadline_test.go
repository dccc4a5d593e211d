package gateway

import (
	"context"
	"errors"
	"testing"
	"time"
)

type key struct{}

func TestWaitCtxNeverWaitedMakesNoTimer(t *testing.T) {
	parent := context.WithValue(context.Background(), key{}, "v")
	d := time.Now().Add(time.Hour)
	c := newWaitCtx(parent, d)
	defer c.stop()
	if err := c.Err(); err != nil {
		t.Fatalf("Err %v", err)
	}
	if got, ok := c.Deadline(); !ok || !got.Equal(d) {
		t.Errorf("Deadline %v %v, want %v", got, ok, d)
	}
	if c.Value(key{}) != "v" || context.Cause(c) != nil {
		t.Errorf("Value %v, Cause %v", c.Value(key{}), context.Cause(c))
	}
	if c.made() != nil {
		t.Error("a timer was made for a context nothing waited on")
	}
}

func TestWaitCtxEndsAtTheDeadline(t *testing.T) {
	c := newWaitCtx(context.Background(), time.Now().Add(20*time.Millisecond))
	defer c.stop()
	fired := make(chan struct{})
	stop := context.AfterFunc(c, func() { close(fired) })
	defer stop()
	<-c.Done()
	<-fired
	if !errors.Is(c.Err(), context.DeadlineExceeded) || context.Cause(c) != errGatewayTimeout {
		t.Errorf("Err %v, Cause %v", c.Err(), context.Cause(c))
	}
}

func TestWaitCtxPastDeadlineWithoutWaiting(t *testing.T) {
	c := newWaitCtx(context.Background(), time.Now().Add(-time.Millisecond))
	defer c.stop()
	if !errors.Is(c.Err(), context.DeadlineExceeded) || context.Cause(c) != errGatewayTimeout {
		t.Errorf("Err %v, Cause %v", c.Err(), context.Cause(c))
	}
	select {
	case <-c.Done():
	default:
		t.Error("Err is set but Done is open")
	}
}

func TestWaitCtxFollowsTheRequest(t *testing.T) {
	gone := errors.New("client gone")
	for _, waited := range []bool{false, true} {
		parent, cancel := context.WithCancelCause(context.Background())
		c := newWaitCtx(parent, time.Now().Add(time.Hour))
		if waited {
			_ = c.Done()
		}
		cancel(gone)
		<-c.Done()
		if !errors.Is(c.Err(), context.Canceled) || context.Cause(c) != gone {
			t.Errorf("waited %v: Err %v, Cause %v", waited, c.Err(), context.Cause(c))
		}
		c.stop()
	}
	// The request's own deadline, if earlier, is the context's.
	early := time.Now().Add(time.Minute)
	parent, cancel := context.WithDeadline(context.Background(), early)
	defer cancel()
	if d, _ := newWaitCtx(parent, early.Add(time.Minute)).Deadline(); !d.Equal(early) {
		t.Errorf("Deadline %v, want the request's %v", d, early)
	}
}

func TestInvokeDeadline(t *testing.T) {
	start := time.Now()
	if d, cause := invokeDeadline(start, start.Add(time.Minute), time.Second); !d.Equal(start.Add(time.Second)) || cause != errFunctionTimeout {
		t.Errorf("function first: %v %v", d, cause)
	}
	if d, cause := invokeDeadline(start, start.Add(time.Second), time.Minute); !d.Equal(start.Add(time.Second)) || cause != errGatewayTimeout {
		t.Errorf("gateway first: %v %v", d, cause)
	}
}
