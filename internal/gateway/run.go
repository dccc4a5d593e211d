package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/runtime/httpwire"
	"github.com/stokehq/stoke/internal/trace"
)

// Call is one invocation for Run.
type Call struct {
	Function     string
	RequestID    string
	Method, Path string // for the record
	// Trace is the caller's trace context, already given to the function;
	// zero starts a new trace.
	Trace trace.Context
	// Ready is called once an instance is acquired, before Do (e.g. to set
	// response headers saying whether it was cold).
	Ready func(rec *record.Record)
	// Do runs the invocation on the instance, within the function timeout.
	Do func(ctx context.Context, inst runtime.Instance) error
	// Status reports the HTTP status the invocation answered with, once Do
	// returned without error (default 200).
	Status func() int
	// Cache is what the function's response cache did before forwarding
	// (record.Record.Cache), Lookup how long it took; zero without a cache.
	Cache  string
	Lookup time.Duration
	// Discard stops the instance after the invocation even when it
	// succeeded, so the next one is a cold start (stoke tune's cold
	// measurements).
	Discard bool
}

// Outcome is how an invocation ended. On failure Err is set and Status,
// ErrorType and Message say what to answer.
type Outcome struct {
	Record    *record.Record // nil when the function does not exist
	Err       error
	Status    int
	ErrorType string
	Message   string
	// Throttled is set when the answer should be Lambda's 429 body.
	Throttled bool
}

// Run runs one invocation of the named function: it waits for an instance
// (gateway timeout), runs c.Do on it (function timeout), releases or
// discards the instance, and records the invocation. It is the only
// invoker: HTTP routes, the Lambda Invoke API and stoke tune (on a gateway
// of its own, without a recorder) all go through it.
//
// An invocation the instance never received (runtime.NotDelivered: it died
// first) runs once more on another instance, under the same request id;
// only what a function received can fail with its instance.
func (g *Gateway) Run(ctx context.Context, c Call) Outcome {
	begin := time.Now()
	if !c.Trace.Valid() {
		c.Trace = trace.NewContext()
	}
	// Waiting for an instance ends at the gateway deadline; the
	// invocation, at the earlier of it and the function's (runOn).
	wctx := newWaitCtx(ctx, begin.Add(g.o.Timeout))
	defer wctx.stop()

	fn, lease, err := g.acquire(wctx, c.Function)
	if err != nil {
		return g.notRun(wctx, c, fn, begin, err)
	}
	// Whatever happens below, a panic included, the instance goes back
	// (or away); Release and Discard after the first are no-ops.
	defer func() { lease.Discard() }()
	for retried := false; ; retried = true {
		queue := lease.QueueWait
		if retried {
			queue = time.Since(begin)
		}
		out, nd := g.runOn(ctx, wctx.deadline, c, fn, lease, begin, queue)
		if nd == nil || retried {
			return out
		}
		g.o.Logger.Info("invocation not delivered: its instance was gone; running it on another",
			"function", fn.Name, "request_id", c.RequestID, "instance", lease.InstanceID, "err", nd.Err)
		if fn.Concurrency <= 1 || isDone(lease.Instance) {
			lease.Discard()
		} else {
			lease.Release()
		}
		if fn, lease, err = g.acquire(wctx, c.Function); err != nil {
			return g.notRun(wctx, c, fn, begin, err)
		}
	}
}

// notRun is the outcome of an invocation that got no instance (err says
// why); it is recorded all the same: throttles, init failures and queue
// timeouts show up among the invocations.
func (g *Gateway) notRun(ctx context.Context, c Call, fn *Function, begin time.Time, err error) Outcome {
	out := g.acquireFailed(ctx, c.Function, err)
	if fn != nil {
		out.Record = &record.Record{
			RequestID: c.RequestID, Function: fn.Name, Version: fn.Version, Start: begin.Add(-c.Lookup),
			QueueMS: ms(time.Since(begin)), MemoryMB: fn.MemoryMB, Status: out.Status, ErrorType: out.ErrorType, ErrorMessage: out.Message,
			Method: c.Method, Path: c.Path, End: time.Now(), Cache: c.Cache, CacheMS: ms(c.Lookup),
		}
		c.Trace.Stamp(out.Record)
		g.finish(out.Record)
	}
	return out
}

// runOn runs c on lease's instance and records it, unless the instance
// never received it: then it returns the *runtime.NotDelivered, records
// nothing and leaves the lease to the caller. ctx is the request's; the
// invocation ends at the function's timeout or at gateway, whichever
// comes first.
func (g *Gateway) runOn(ctx context.Context, gateway time.Time, c Call, fn *Function, lease *pool.Lease, begin time.Time, queue time.Duration) (Outcome, *runtime.NotDelivered) {
	rec := &record.Record{
		RequestID: c.RequestID, Function: fn.Name, Version: fn.Version, Start: begin.Add(-c.Lookup),
		Cold: lease.Cold, QueueMS: ms(queue), MemoryMB: fn.MemoryMB,
		InstanceID: lease.InstanceID, Method: c.Method, Path: c.Path, Cache: c.Cache, CacheMS: ms(c.Lookup),
	}
	c.Trace.Stamp(rec)
	inst := lease.Instance
	if rec.Cold {
		rec.InitMS = ms(inst.InitDuration())
		rec.InitBoost = fn.InitBoost
	}
	if c.Ready != nil {
		c.Ready(rec)
	}
	if g.o.Recorder != nil {
		g.o.Recorder.Begin(rec)
	}

	start := time.Now()
	deadline, cause := invokeDeadline(start, gateway, fn.Timeout)
	ictx, icancel := context.WithDeadlineCause(ctx, deadline, cause)
	defer icancel()
	err := g.do(ictx, c, inst)
	end := time.Now()
	if nd, ok := runtime.AsNotDelivered(err); ok && ictx.Err() == nil {
		return Outcome{}, nd
	}
	rec.DurationMS = ms(end.Sub(start))
	rec.InvokeStart, rec.End = start, end

	out := Outcome{Record: rec, Err: err, Status: http.StatusOK}
	var invalid *httpwire.RequestError
	switch {
	case err == nil:
		rec.Status = http.StatusOK
		if c.Status != nil && c.Status() != 0 {
			rec.Status = c.Status()
		}
		if c.Discard {
			lease.Discard()
		} else {
			lease.Release()
		}
	case errors.As(err, &invalid):
		// Refused before anything reached the instance: it is as good as
		// it was.
		g.invokeFailed(&out, ictx, fn, err)
		lease.Release()
	default:
		g.invokeFailed(&out, ictx, fn, err)
		// At concurrency 1 the app may still be busy with the abandoned
		// request, and reusing the instance would break one request per
		// instance. Above 1 the app serves requests side by side anyway,
		// and stopping it would fail the others in flight.
		if c.Discard || fn.Concurrency <= 1 || isDone(inst) {
			lease.Discard()
		} else {
			lease.Release()
		}
	}
	rec.BilledMS = record.Billed(time.Duration(rec.DurationMS*float64(time.Millisecond)), g.o.Granularity)
	rec.MaxMemoryMB = inst.MaxMemoryMB()
	g.finish(rec)
	return out, nil
}

// do runs c.Do, turning a panic into an error: a bug in Stoke or a runtime
// must not take the server down, nor leave an instance leased.
func (g *Gateway) do(ctx context.Context, c Call, inst runtime.Instance) (err error) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if p == http.ErrAbortHandler { // the response broke off midway, on purpose
			err = fmt.Errorf("%w: the invocation was aborted", http.ErrAbortHandler)
			return
		}
		g.o.Logger.Error("panic while invoking a function", "function", c.Function, "request_id", c.RequestID,
			"panic", p, "stack", string(debug.Stack()))
		err = &panicError{p}
	}()
	return c.Do(ctx, inst)
}

// finish hands a finished invocation's record to the recorder and tracer.
func (g *Gateway) finish(rec *record.Record) {
	if g.o.Recorder != nil {
		g.o.Recorder.End(rec)
	}
	if g.o.Tracer != nil {
		g.o.Tracer.Trace(rec)
	}
}

func isDone(inst runtime.Instance) bool {
	select {
	case <-inst.Done():
		return true
	default:
		return false
	}
}

// acquire gets an instance of the named function, following a deploy that
// swaps the function's pool while the request is on its way.
func (g *Gateway) acquire(ctx context.Context, name string) (*Function, *pool.Lease, error) {
	for {
		fn := g.table.Load().byName[name]
		if fn == nil {
			return nil, nil, errNoFunction
		}
		lease, err := fn.Pool.Acquire(ctx)
		if errors.Is(err, pool.ErrDraining) {
			if next := g.table.Load().byName[name]; next != nil && next.Pool != fn.Pool {
				continue
			}
			// The function is being removed: nothing new will come.
			return fn, nil, errNoFunction
		}
		return fn, lease, err
	}
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
