// Package gateway is Stoke's front door: it matches a request's path to a
// function, enforces the gateway and function timeouts and the body limit,
// gets an instance from the function's pool and records the invocation.
// It knows nothing about processes.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/stokehq/stoke/internal/cache"
	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/trace"
)

// Pool is what the gateway needs of a function's scheduler.
type Pool interface {
	Acquire(ctx context.Context) (*pool.Lease, error)
	// Idle says whether an instance is ready and free (the response cache
	// answers from a stale entry rather than wait for a cold start).
	Idle() bool
}

// Function is one deployed function version as the gateway serves it.
type Function struct {
	Name     string
	Version  string
	MemoryMB int
	Timeout  time.Duration
	Routes   []string
	Pool     Pool
	// Concurrency is the function's in-flight requests per instance.
	Concurrency int
	// InitBoost is init_boost: a cold start's init runs without the CPU
	// quota. Recorded on the records of cold starts.
	InitBoost bool
	// Cache is the function's response cache, nil for none (cache.go).
	Cache *cache.Cache
}

// Recorder receives each invocation: Begin before the instance is invoked
// (START line), End once it answered (END and REPORT lines, storage).
type Recorder interface {
	Begin(r *record.Record)
	End(r *record.Record)
}

// Tracer receives each invocation once it ended, its record stamped with
// its trace (ids, invoke start, end), to export its spans off the request
// path. The record is all that is stored of a trace.
type Tracer interface {
	Trace(rec *record.Record)
}

// Options configures a Gateway.
type Options struct {
	Timeout      time.Duration // gateway.timeout
	MaxBodyBytes int64
	Granularity  time.Duration // billing granularity
	Recorder     Recorder
	Tracer       Tracer // optional
	Logger       *slog.Logger
}

// Gateway routes HTTP requests to functions. Its zero value is not usable;
// create it with New and give it functions with Set.
type Gateway struct {
	o     Options
	table atomic.Pointer[table]
}

// New makes a gateway with no functions.
func New(o Options) *Gateway {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Granularity <= 0 {
		o.Granularity = time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// Request ids come from crypto/rand; reading it in blocks keeps a
	// syscall off most requests.
	uuid.EnableRandPool()
	g := &Gateway{o: o}
	g.table.Store(newTable(nil))
	return g
}

// Set replaces the deployed functions atomically: requests arriving after it
// returns are routed to the new set.
func (g *Gateway) Set(fns []*Function) { g.table.Store(newTable(fns)) }

// Function returns the deployed function called name, or nil.
func (g *Gateway) Function(name string) *Function { return g.table.Load().byName[name] }

// ServeHTTP routes by path.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fn := g.table.Load().match(r.URL.Path)
	if fn == nil {
		writeError(w, http.StatusNotFound, "NotFound", "no function is routed at "+r.URL.Path, "")
		return
	}
	g.Invoke(w, r, fn.Name)
}

// Invoke runs one HTTP request on the named function, whatever its path.
func (g *Gateway) Invoke(w http.ResponseWriter, r *http.Request, name string) {
	reqID := uuid.NewString()
	h := w.Header()
	h.Set("X-Request-Id", reqID)
	if r.ContentLength > g.o.MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException",
			fmt.Sprintf("request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, g.o.MaxBodyBytes), reqID)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, g.o.MaxBodyBytes)
	}
	r.Header.Set("X-Request-Id", reqID)
	// The ids exist before the function runs, so it can join the trace.
	tc := trace.FromHeaders(r.Header)
	tc.Inject(r.Header)
	if fn := g.table.Load().byName[name]; fn != nil && fn.Cache != nil {
		g.serveCached(w, r, fn, reqID, tc)
		return
	}
	if _, err := g.forward(w, r, name, reqID, tc, h, "", 0); err != nil {
		// The response broke off midway: abort the connection so the client
		// cannot take a truncated body for a whole one.
		panic(http.ErrAbortHandler)
	}
}

// forward runs r on the named function: the function's response, or
// Stoke's error response, goes to w; Stoke's own fields (X-Stoke-Cold,
// Server-Timing) go to meta. cacheKind and lookup say what the response
// cache did first (none: ""). It returns the version that ran r and, when
// the response broke off after it started, the error.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, name, reqID string, tc trace.Context, meta http.Header, cacheKind string, lookup time.Duration) (string, error) {
	sw := &statusWriter{ResponseWriter: w}
	out := g.Run(r.Context(), Call{
		Function: name, RequestID: reqID, Method: r.Method, Path: r.URL.Path, Trace: tc,
		Cache: cacheKind, Lookup: lookup,
		Ready: func(rec *record.Record) {
			if rec.Cold {
				meta.Set("Server-Timing", fmt.Sprintf("queue;dur=%.2f, init;dur=%.2f", rec.QueueMS, rec.InitMS))
			}
			meta.Set("X-Stoke-Cold", strconv.FormatBool(rec.Cold))
		},
		Do: func(ctx context.Context, inst runtime.Instance) error {
			if err := inst.Invoke(sw, r.WithContext(ctx)); err != nil {
				return err
			}
			// Send the response now, not after the bookkeeping that follows.
			_ = http.NewResponseController(sw).Flush()
			return nil
		},
		Status: func() int { return sw.status },
	})
	version := ""
	if out.Record != nil {
		version = out.Record.Version
	}
	if out.Err != nil && !sw.wrote {
		writeFailure(sw, out, reqID)
	}
	if out.Err != nil && sw.wrote && errors.Is(out.Err, http.ErrAbortHandler) {
		return version, out.Err
	}
	return version, nil
}

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
// discards the instance, and records the invocation. Both HTTP routes and
// the Lambda Invoke API go through it.
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
				QueueMS: ms(time.Since(begin)), MemoryMB: fn.MemoryMB, Status: out.Status, ErrorType: out.ErrorType,
				Method: c.Method, Path: c.Path, End: time.Now(), Cache: c.Cache, CacheMS: ms(c.Lookup),
			}
			c.Trace.Stamp(out.Record)
			if g.o.Recorder != nil {
				g.o.Recorder.End(out.Record)
			}
			if g.o.Tracer != nil {
				g.o.Tracer.Trace(out.Record)
			}
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
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			out.Status, out.ErrorType = http.StatusRequestEntityTooLarge, "RequestTooLargeException"
			out.Message = fmt.Sprintf("request body exceeds the limit of %d bytes", mbe.Limit)
		case context.Cause(ictx) == errFunctionTimeout:
			out.Status, out.ErrorType = http.StatusGatewayTimeout, "Sandbox.Timedout"
			out.Message = fmt.Sprintf("Task timed out after %.2f seconds", fn.Timeout.Seconds())
		case context.Cause(ictx) == errGatewayTimeout:
			out.Status, out.ErrorType = http.StatusGatewayTimeout, "Gateway.Timeout"
			out.Message = fmt.Sprintf("gateway timed out after %s (gateway.timeout) while the function was running", g.o.Timeout)
		case ictx.Err() != nil:
			out.Status, out.ErrorType, out.Message = 499, "Client.Closed", "the client closed the request"
		default:
			e := runtime.AsError(err)
			out.Status, out.ErrorType, out.Message = e.Status, e.Type, e.Message
			if out.Status == 0 {
				out.Status = http.StatusBadGateway
			}
		}
		rec.ErrorType = out.ErrorType
		rec.Status = out.Status
		// At concurrency 1 the app may still be busy with the abandoned
		// request, and reusing the instance would break one request per
		// instance. Above 1 the app serves requests side by side anyway,
		// and stopping it would fail the others in flight.
		if fn.Concurrency <= 1 || isDone(inst) {
			lease.Discard()
		} else {
			lease.Release()
		}
	} else {
		lease.Release()
		rec.Status = http.StatusOK
		if c.Status != nil && c.Status() != 0 {
			rec.Status = c.Status()
		}
	}
	rec.BilledMS = record.Billed(time.Duration(rec.DurationMS*float64(time.Millisecond)), g.o.Granularity)
	rec.MaxMemoryMB = inst.MaxMemoryMB()
	if g.o.Recorder != nil {
		g.o.Recorder.End(rec)
	}
	if g.o.Tracer != nil {
		g.o.Tracer.Trace(rec)
	}
	return out
}

func isDone(inst runtime.Instance) bool {
	select {
	case <-inst.Done():
		return true
	default:
		return false
	}
}

var (
	errGatewayTimeout  = errors.New("gateway timeout")
	errFunctionTimeout = errors.New("function timeout")
)

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

var errNoFunction = errors.New("no such function")

// acquireFailed says why a request got no instance.
func (g *Gateway) acquireFailed(ctx context.Context, name string, err error) Outcome {
	switch {
	case errors.Is(err, errNoFunction):
		return Outcome{Err: err, Status: http.StatusNotFound, ErrorType: "ResourceNotFoundException", Message: "Function not found: " + name}
	case errors.Is(err, pool.ErrThrottled):
		return Outcome{Err: err, Status: http.StatusTooManyRequests, ErrorType: "TooManyRequestsException", Message: "Rate Exceeded.", Throttled: true}
	case context.Cause(ctx) == errGatewayTimeout:
		return Outcome{Err: err, Status: http.StatusGatewayTimeout, ErrorType: "Gateway.Timeout",
			Message: fmt.Sprintf("gateway timed out after %s (gateway.timeout) while waiting for an instance of %s", g.o.Timeout, name)}
	case ctx.Err() != nil:
		return Outcome{Err: err, Status: 499, ErrorType: "Client.Closed", Message: "the client closed the request while it waited for an instance"}
	}
	e := runtime.AsError(err)
	out := Outcome{Err: err, Status: e.Status, ErrorType: e.Type, Message: e.Message}
	if out.Status == 0 {
		out.Status = http.StatusBadGateway
	}
	return out
}

// writeFailure answers a failed invocation with a Lambda-style error.
func writeFailure(w http.ResponseWriter, out Outcome, reqID string) {
	if out.Throttled {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, out.ErrorType,
			fmt.Sprintf(`{"Reason":"ConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded.","requestId":%q}`, reqID))
		return
	}
	writeError(w, out.Status, out.ErrorType, out.Message, reqID)
}

// writeError answers with a Lambda-style JSON error body and says its type
// in x-amzn-ErrorType, as Lambda's APIs do.
func writeError(w http.ResponseWriter, status int, typ, msg, reqID string) {
	body := fmt.Sprintf(`{"errorType":%q,"errorMessage":%q,"requestId":%q}`, typ, msg, reqID)
	writeJSON(w, status, typ, body)
}

func writeJSON(w http.ResponseWriter, status int, typ, body string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-Errortype", typ)
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body + "\n"))
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// statusWriter remembers the status an instance answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote && code >= 200 {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if !s.wrote {
		s.status, s.wrote = http.StatusOK, true
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// table is an immutable route table; Set swaps in a new one. Exact routes
// are looked up in a map; the prefix routes are tried in turn, with
// config.Match so routing means what validation checked. Config forbids
// overlapping routes, so at most one matches and order does not matter.
type table struct {
	byName   map[string]*Function
	exact    map[string]*Function
	prefixes []prefixRoute
}

type prefixRoute struct {
	pattern string
	fn      *Function
}

func newTable(fns []*Function) *table {
	t := &table{byName: map[string]*Function{}, exact: map[string]*Function{}}
	for _, fn := range fns {
		t.byName[fn.Name] = fn
		for _, r := range fn.Routes {
			if strings.HasSuffix(r, "*") {
				t.prefixes = append(t.prefixes, prefixRoute{r, fn})
			} else {
				t.exact[r] = fn
			}
		}
	}
	return t
}

func (t *table) match(path string) *Function {
	if fn := t.exact[path]; fn != nil {
		return fn
	}
	for _, p := range t.prefixes {
		if config.Match(p.pattern, path) {
			return p.fn
		}
	}
	return nil
}
