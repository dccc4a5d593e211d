package httprt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"

	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/runtime/httpwire"
	"github.com/stokehq/stoke/internal/sandbox"
)

// Instance is one running app process behind the forwarder (forward.go).
type Instance struct {
	runtime.Proc
	rt   *Runtime
	port int
	addr string
	// netns is the instance's own network namespace (network: none): the
	// app's port is reachable only by dialling from inside it.
	netns *sandbox.NetNS

	mu      sync.Mutex
	idle    []*conn // kept-alive connections to the app, most recently used last
	maxIdle int     // the function's concurrency: the warm path never dials
	closed  bool
}

var _ runtime.Instance = (*Instance)(nil)

func newInstance(rt *Runtime, id string, port int) *Instance {
	return &Instance{
		Proc: runtime.Proc{ID: id, MemoryLimitMB: rt.o.Function.Memory, Output: rt.o.Output},
		rt:   rt, port: port, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		maxIdle: max(rt.o.Function.Concurrency, 1),
	}
}

// Invoke forwards one request to the instance. On failure it writes nothing
// (unless the response had already started) and returns why: ctx's error
// (wrapped) if the request ended, the client body's *http.MaxBytesError
// (wrapped), a *runtime.NotDelivered when no byte of the request reached
// the app's connection, else an *runtime.Error. When the response had started before
// the failure (the app died mid-body, the client went away), the error also
// matches errors.Is(err, http.ErrAbortHandler): the caller should
// panic(http.ErrAbortHandler) after recording it, so the client sees a
// broken response instead of a truncated one that looks complete.
func (in *Instance) Invoke(w http.ResponseWriter, r *http.Request) error {
	if err := in.Refuse(r); err != nil {
		return err
	}
	ctx := r.Context()
	if httpwire.Listed(r.Header["Connection"], "upgrade") {
		return in.invokeUpgrade(w, r)
	}
	bp := buffers.Get().(*[bufSize]byte)
	defer buffers.Put(bp)
	buf := bp[:]
	res, cl, err := in.roundTrip(ctx, r, buf)
	if err != nil {
		if nd, ok := err.(*runtime.NotDelivered); ok {
			if ctx.Err() == nil {
				nd.Err = in.explain(ctx, nd.Err)
				return nd
			}
			err = nd.Err // the request ended: nothing to retry
		}
		return in.explain(ctx, err)
	}
	if cl.body != nil {
		// The body is still being sent: without this, net/http's server
		// would consume what is left of it when the response starts,
		// racing the writer for it.
		_ = http.NewResponseController(w).EnableFullDuplex()
	}
	h := w.Header()
	httpwire.CopyResponseHeader(h, res.Header)
	w.WriteHeader(res.StatusCode)

	// Flush as the app writes when it streams (no length, or server-sent
	// events), as httputil.ReverseProxy does; otherwise the server's buffer
	// batches the body into as few writes as it can.
	var rc *http.ResponseController
	if res.ContentLength < 0 || isEventStream(res.Header["Content-Type"]) {
		rc = http.NewResponseController(w)
	}
	whole := false
	for {
		n, rerr := res.Body.Read(buf)
		if n > 0 {
			if _, err = w.Write(buf[:n]); err != nil {
				break
			}
			if rc != nil {
				// As ReverseProxy: a writer that cannot flush still gets
				// the body, and a client gone fails the next Write.
				_ = rc.Flush()
			}
		}
		if rerr == io.EOF {
			whole = true
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	if whole {
		for k, vv := range res.Trailer { // filled in once the body ended
			h[http.TrailerPrefix+k] = vv
		}
	}
	berr := in.finish(cl, whole && !res.Close)
	if err == nil {
		// Whatever happened to the rest of the request body, the app gave
		// a whole answer.
		return nil
	}
	if _, ok := berr.(*bodyError); ok {
		err = berr
	}
	return fmt.Errorf("%w: %w", http.ErrAbortHandler, in.explain(ctx, err))
}

// explain turns a forwarding error into what Invoke returns.
func (in *Instance) explain(ctx context.Context, err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("invoke instance %s: %w", in.ID, err) // the caller answers 413
	}
	return in.failure(ctx, err)
}

func isEventStream(ct []string) bool {
	return len(ct) > 0 && len(ct[0]) >= 17 && strings.EqualFold(ct[0][:17], "text/event-stream")
}

// Upgrades (WebSocket) are rare and long-lived, and need a tunnel in both
// directions after the 101: they keep going through httputil.ReverseProxy,
// on connections of their own that are never reused.
var upgradeTransport = &http.Transport{
	DialContext:        dialer.DialContext,
	DisableKeepAlives:  true,
	DisableCompression: true,
	// A non-nil empty map turns HTTP/2 off: the app speaks HTTP/1.1 on loopback.
	TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
}

// dial connects to the app, from inside its network namespace if it has one.
func (in *Instance) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if in.netns == nil {
		return dialer.DialContext(ctx, network, addr)
	}
	ctx, cancel := context.WithTimeout(ctx, dialer.Timeout)
	defer cancel()
	return in.netns.DialContext(ctx, network, addr)
}

func (in *Instance) upgradeTransport() http.RoundTripper {
	if in.netns == nil {
		return upgradeTransport
	}
	t := upgradeTransport.Clone()
	t.DialContext = in.dial
	return t
}

func (in *Instance) invokeUpgrade(w http.ResponseWriter, r *http.Request) (err error) {
	var perr error
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = in.addr
			// ReverseProxy drops the forwarded fields before Rewrite; the
			// gateway set them by its policy, so they go on as they are.
			for _, k := range [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v, ok := pr.In.Header[k]; ok {
					pr.Out.Header[k] = v
				}
			}
		},
		Transport:    in.upgradeTransport(),
		ErrorHandler: func(_ http.ResponseWriter, _ *http.Request, err error) { perr = err },
		ErrorLog:     slog.NewLogLogger(in.rt.o.Logger.With("instance", in.ID).Handler(), slog.LevelDebug),
	}
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				panic(p)
			}
			err = fmt.Errorf("%w: %w", http.ErrAbortHandler, in.failure(r.Context(), nil))
		}
	}()
	rp.ServeHTTP(w, r)
	if perr != nil {
		return in.failure(r.Context(), perr)
	}
	return nil
}

// failure explains why a request failed: the request ended, the process
// died (runtime.AwaitExit), or the proxy itself
// failed.
func (in *Instance) failure(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("invoke instance %s: %w", in.ID, ctx.Err())
	}
	if runtime.AwaitExit(ctx, in.Process) {
		return in.ExitError()
	}
	if ctx.Err() != nil {
		return fmt.Errorf("invoke instance %s: %w", in.ID, ctx.Err())
	}
	if err == nil {
		err = errors.New("response body copy failed")
	}
	return runtime.Errorf("Runtime.Unknown", http.StatusBadGateway, "proxy to instance %s: %v", in.ID, err)
}

// Port is the loopback port the app listens on.
func (in *Instance) Port() int { return in.port }

// Stop stops the process (SIGTERM, SIGKILL after 2 s) and drops the
// connections to it. Safe to call more than once.
func (in *Instance) Stop(ctx context.Context) error {
	err := in.Process.Stop(ctx, stopGrace)
	in.closeConns()
	if in.netns != nil {
		in.netns.Close()
	}
	if err != nil {
		return fmt.Errorf("stop instance %s: %w", in.ID, err)
	}
	return nil
}

// buffers holds the 32 KiB buffers that carry bodies. It pools array
// pointers, so neither Get nor Put allocates.
const bufSize = 32 << 10

var buffers = sync.Pool{New: func() any { return new([bufSize]byte) }}
