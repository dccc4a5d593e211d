package gateway

import (
	"context"
	"errors"
	"net/http"
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
func (g *Gateway) Run(ctx context.Context, c Call) Outcome {
	begin := time.Now()
	if !c.Trace.Valid() {
		c.Trace = trace.NewContext()
	}
	ctx, cancel := context.WithTimeoutCause(ctx, g.o.Timeout, errGatewayTimeout)
	defer cancel()

	fn, lease, err := g.acquire(ctx, c.Function)
	if err != nil {
		out := g.acquireFailed(ctx, c.Function, err)
		if fn != nil {
			// No instance ran it, but it still counts: throttles, init
			// failures and queue timeouts show up among the invocations.
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
	rec := &record.Record{
		RequestID: c.RequestID, Function: fn.Name, Version: fn.Version, Start: begin.Add(-c.Lookup),
		Cold: lease.Cold, QueueMS: ms(lease.QueueWait), MemoryMB: fn.MemoryMB,
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

	ictx, icancel := context.WithTimeoutCause(ctx, fn.Timeout, errFunctionTimeout)
	defer icancel()
	start := time.Now()
	err = c.Do(ictx, inst)
	end := time.Now()
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
	return out
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
