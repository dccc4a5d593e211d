package httprt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"

	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/sandbox"
)

// Instance is one running app process behind a reverse proxy.
type Instance struct {
	rt           *Runtime
	id           string
	port         int
	addr         string
	proc         sandbox.Process
	transport    *http.Transport
	proxy        *httputil.ReverseProxy
	initDuration time.Duration
	last         ring
}

var _ runtime.Instance = (*Instance)(nil)

func newInstance(rt *Runtime, id string, port int) *Instance {
	in := &Instance{rt: rt, id: id, port: port, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	conc := max(rt.o.Function.Concurrency, 1)
	in.transport = &http.Transport{
		Proxy:       nil,
		DialContext: (&net.Dialer{Timeout: time.Second}).DialContext,
		// Keep one connection per request the instance may serve at once, so
		// the warm path never dials.
		MaxIdleConns:        conc,
		MaxIdleConnsPerHost: conc,
		IdleConnTimeout:     0,
		DisableCompression:  true,
		// A non-nil empty map turns HTTP/2 off: the app speaks HTTP/1.1 on loopback.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	in.proxy = &httputil.ReverseProxy{
		Rewrite: in.rewrite,
		// FlushInterval stays 0: ReverseProxy already flushes every write of a
		// response without a Content-Length (streaming) or of text/event-stream,
		// and -1 would add a timer goroutine and a separate header write to
		// every request.
		FlushInterval: 0,
		BufferPool:    bufferPool{},
		Transport:     in.transport,
		ErrorHandler:  errorHandler,
		ErrorLog:      slog.NewLogLogger(rt.o.Logger.With("instance", id).Handler(), slog.LevelDebug),
	}
	return in
}

// output receives the app's lines from the sandbox.
func (in *Instance) output(stream, line string) {
	in.last.add(line)
	if out := in.rt.o.Output; out != nil {
		out(in.id, stream, line)
	}
}

func (in *Instance) lastOutput() string { return in.last.String() }

func (in *Instance) rewrite(pr *httputil.ProxyRequest) {
	// Out is a deep copy of In whose Host already is the client's Host.
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = in.addr
	// ReverseProxy drops the client's X-Forwarded-For before Rewrite; put it
	// back so SetXForwarded appends to it, as API Gateway does.
	if prior, ok := pr.In.Header["X-Forwarded-For"]; ok {
		pr.Out.Header["X-Forwarded-For"] = prior
	}
	pr.SetXForwarded()
}

// invocation wraps the caller's ResponseWriter for one Invoke so the
// ErrorHandler can hand its error back without allocating. Pooled.
type invocation struct {
	http.ResponseWriter
	err error
}

// Unwrap lets http.ResponseController reach Flush and Hijack underneath.
func (v *invocation) Unwrap() http.ResponseWriter { return v.ResponseWriter }

var invocations = sync.Pool{New: func() any { return new(invocation) }}

// errorHandler records the failure and writes nothing: the caller answers.
func errorHandler(w http.ResponseWriter, _ *http.Request, err error) {
	if v, ok := w.(*invocation); ok {
		v.err = err
	}
}

// Invoke proxies one request to the instance. On failure it writes nothing
// (unless the response had already started) and returns why: ctx's error
// (wrapped) if the request ended, else an *runtime.Error. When the response
// had started before the failure (the app died mid-body, the client went
// away), the error also matches errors.Is(err, http.ErrAbortHandler): the
// caller should panic(http.ErrAbortHandler) after recording it, so the client
// sees a broken response instead of a truncated one that looks complete.
func (in *Instance) Invoke(w http.ResponseWriter, r *http.Request) (err error) {
	v := invocations.Get().(*invocation)
	v.ResponseWriter = w
	defer func() {
		v.ResponseWriter, v.err = nil, nil
		invocations.Put(v)
	}()
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				panic(p)
			}
			err = fmt.Errorf("%w: %w", http.ErrAbortHandler, in.failure(r.Context(), nil))
		}
	}()
	in.proxy.ServeHTTP(v, r)
	if v.err != nil {
		return in.failure(r.Context(), v.err)
	}
	// Outside an http.Server, ReverseProxy swallows a failed body copy
	// instead of panicking; a request that ended is the likely cause.
	if err := r.Context().Err(); err != nil {
		return fmt.Errorf("invoke instance %s: %w", in.id, err)
	}
	return nil
}

// failure explains why a request failed: the request ended, the process
// died (the connection reset often arrives before the exit is reaped, so
// wait a little for it), or the proxy itself failed.
func (in *Instance) failure(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("invoke instance %s: %w", in.id, ctx.Err())
	}
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-in.proc.Done():
		return in.exitError()
	case <-ctx.Done():
		return fmt.Errorf("invoke instance %s: %w", in.id, ctx.Err())
	case <-t.C:
	}
	if err == nil {
		err = errors.New("response body copy failed")
	}
	return runtime.Errorf("Runtime.Unknown", http.StatusBadGateway, "proxy to instance %s: %v", in.id, err)
}

// exitError describes how the process ended, the way Lambda words it.
func (in *Instance) exitError() *runtime.Error {
	x := in.proc.Exit()
	how := "exit status " + strconv.Itoa(x.Code)
	if x.Signal != "" {
		how = "signal: " + x.Signal
	}
	switch {
	case x.OOMKilled:
		return runtime.Errorf("Runtime.OutOfMemory", http.StatusBadGateway,
			"Runtime exited with error: %s: the instance exceeded its memory limit of %d MB",
			how, in.rt.o.Function.Memory)
	case x.Stopped:
		return runtime.Errorf("Runtime.ExitError", http.StatusBadGateway, "Runtime exited: instance was stopped")
	}
	return runtime.Errorf("Runtime.ExitError", http.StatusBadGateway, "Runtime exited with error: %s", how)
}

func (in *Instance) Done() <-chan struct{} { return in.proc.Done() }

// Err says why the process exited; nil while it runs.
func (in *Instance) Err() error {
	select {
	case <-in.proc.Done():
		return in.exitError()
	default:
		return nil
	}
}

func (in *Instance) Pid() int                    { return in.proc.Pid() }
func (in *Instance) InitDuration() time.Duration { return in.initDuration }
func (in *Instance) MaxMemoryMB() int            { return in.proc.MaxMemoryMB() }
func (in *Instance) MemoryMB() int               { return in.proc.MemoryMB() }

// Port is the loopback port the app listens on.
func (in *Instance) Port() int { return in.port }

// Stop stops the process (SIGTERM, SIGKILL after 2 s) and drops the
// connections to it. Safe to call more than once.
func (in *Instance) Stop(ctx context.Context) error {
	err := in.proc.Stop(ctx, stopGrace)
	in.transport.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("stop instance %s: %w", in.id, err)
	}
	return nil
}

// bufferPool lends ReverseProxy its 32 KiB copy buffers. It pools array
// pointers, so neither Get nor Put allocates.
type bufferPool struct{}

const bufSize = 32 << 10

var buffers = sync.Pool{New: func() any { return new([bufSize]byte) }}

func (bufferPool) Get() []byte { return buffers.Get().(*[bufSize]byte)[:] }

func (bufferPool) Put(b []byte) {
	if cap(b) >= bufSize {
		buffers.Put((*[bufSize]byte)(b[:bufSize]))
	}
}
