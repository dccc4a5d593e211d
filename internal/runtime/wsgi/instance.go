package wsgirt

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/runtime/httpwire"
	"github.com/stokehq/stoke/internal/sandbox"
)

// Instance is one shim serving the app, one request at a time, over its own
// connection.
type Instance struct {
	runtime.Proc
	rt  *Runtime
	tpl *template // forked from; nil for a plain instance

	// c is the connection to the shim. br, bw and buf (frame payloads)
	// are pooled and held only during an exchange with it (take, drop): an
	// idle instance holds no buffers (128 KB each kept 1,000 idle instances
	// at 128 MB of Stoke's memory).
	c   net.Conn
	br  *bufio.Reader
	bw  *bufio.Writer
	buf *[]byte
	// wrote counts the bytes of the request being sent that the kernel
	// took (runtime.NotDelivered: none means the shim cannot have seen it).
	wrote int64
	cw    *counter // writes to c, counting into wrote

	// boostEnd, while set, ends the init boost a forked instance keeps
	// through its first request (boostFirst); whichever of that request's
	// end and the timer comes first ends it.
	boostEnd atomic.Pointer[time.Timer]

	closeOnce sync.Once
}

// firstRequestBoost bounds how long a forked instance keeps its init boost
// after it is ready while no request has come (keep_warm) or while its first
// request runs. A variable for tests.
var firstRequestBoost = time.Second

// boostFirst keeps (or, for a spare whose quota applied when it was ready,
// lifts again) the init boost until the instance's first request ends:
// that request still pays for the fork (copy-on-write faults on the pages
// it writes that the warm-up did not: ~220 for a Django request the
// warm-up did not make), which at 128 MB's 7.2 ms per 100 ms period
// spills into the next period. Like init, it is billed at the function's
// price for its duration.
func (in *Instance) boostFirst() {
	if !in.rt.o.Function.InitBoost {
		return
	}
	if err := in.Process.Boost(); err != nil {
		in.rt.o.Logger.Warn("boost the first request", "function", in.rt.o.Function.Name, "instance", in.ID, "err", err)
		return
	}
	in.boostEnd.Store(time.AfterFunc(firstRequestBoost, in.endBoost))
}

// endBoost applies the CPU quota (again), once.
func (in *Instance) endBoost() {
	if in.boostEnd.Swap(nil) == nil {
		return // stopped, or ended already
	}
	if err := in.Process.EndInitBoost(); err != nil {
		select {
		case <-in.Process.Exited(): // its cgroup goes with it
		default:
			in.rt.o.Logger.Warn("end init boost", "function", in.rt.o.Function.Name, "instance", in.ID, "err", err)
		}
	}
}

var _ runtime.Instance = (*Instance)(nil)

func newInstance(rt *Runtime, id string) *Instance {
	in := &Instance{rt: rt, Proc: runtime.Proc{ID: id, MemoryLimitMB: rt.o.Function.Memory, Output: rt.o.Output}}
	in.ParentGone = in.parentGone
	return in
}

// parentGone says whether a fork ended with its template: with isolation
// the template is PID 1 of the PID namespace its forks share, and the
// kernel ends them when it exits (docs/SECURITY.md); their status is then
// never reported.
func (in *Instance) parentGone(x sandbox.Exit) *runtime.ParentGone {
	if in.tpl == nil || in.rt.o.Isolation == nil || !x.Unreported || x.Stopped || !in.tpl.gone() {
		return nil
	}
	return &runtime.ParentGone{Parent: in.tpl.id, Err: runtime.Errorf("Runtime.ExitError", http.StatusBadGateway,
		"Runtime exited: the python template it was forked from (%s) died, and with isolation its forks end with it (they share its PID namespace)", in.tpl.id)}
}

func (in *Instance) attach(c shimConn) {
	in.c = c.c
	in.cw = &counter{c.c, &in.wrote}
	in.take()
}

// counter counts what is written through it.
type counter struct {
	w io.Writer
	n *int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	*c.n += int64(n)
	return n, err
}

const shimBufSize = 64 << 10

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, shimBufSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, shimBufSize) }}
	// payloads are frame payload buffers; ones grown past maxPooledPayload
	// are left to the collector.
	payloads = sync.Pool{New: func() any { b := make([]byte, 0, shimBufSize); return &b }}
)

const maxPooledPayload = 1<<20 + 1

// take gives the instance buffers for an exchange with the shim.
func (in *Instance) take() {
	if in.br == nil {
		in.br = readers.Get().(*bufio.Reader)
		in.br.Reset(in.c)
	}
	if in.bw == nil {
		in.bw = writers.Get().(*bufio.Writer)
		in.bw.Reset(in.cw)
	}
	if in.buf == nil {
		in.buf = payloads.Get().(*[]byte)
	}
}

// drop gives the buffers back once an exchange ended with nothing left in
// them; otherwise (a broken exchange) the instance keeps them.
func (in *Instance) drop() {
	if in.br != nil && in.br.Buffered() == 0 {
		in.br.Reset(nil)
		readers.Put(in.br)
		in.br = nil
	}
	if in.bw != nil && in.bw.Buffered() == 0 {
		in.bw.Reset(nil)
		writers.Put(in.bw)
		in.bw = nil
	}
	if in.buf != nil {
		if cap(*in.buf) <= maxPooledPayload {
			payloads.Put(in.buf)
		}
		in.buf = nil
	}
}

// awaitReady reads the shim's R (or E) frame.
func (in *Instance) awaitReady(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = in.c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	err := readReady(in.br)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// readReady reads the shim's answer to the go-ahead: nil for R, the app's
// init error for E.
func readReady(br *bufio.Reader) error {
	typ, p, err := readFrame(br, nil)
	if err != nil {
		return err
	}
	switch typ {
	case frameReady:
		return nil
	case frameInitErr:
		var e errorPayload
		if err := json.Unmarshal(p, &e); err != nil {
			return fmt.Errorf("protocol: %w", err)
		}
		return initError(e)
	}
	return fmt.Errorf("protocol: frame %q before ready", typ)
}

// failed stops an instance that never became ready and says why, in
// Lambda's words: the app's own init error, an exit, or a timeout.
func (in *Instance) failed(ctx context.Context, cause error) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if in.c != nil {
		in.c.Close()
	}
	if err := in.Process.Stop(sctx, 0); err != nil {
		in.rt.o.Logger.Warn("stop failed instance", "function", in.rt.o.Function.Name, "instance", in.ID, "err", err)
	}
	var re *runtime.Error
	switch {
	case errors.As(cause, &re):
		return re
	case ctx.Err() != nil:
		return fmt.Errorf("start instance %s: %w", in.ID, ctx.Err())
	case errors.Is(cause, context.DeadlineExceeded):
		return runtime.Errorf("Runtime.InitError", http.StatusBadGateway,
			"the app was not ready within the init limit of %s (python: %s); last output: %s", in.rt.o.Function.InitTimeout, in.rt.interpreter(), in.Last.String())
	}
	x := in.Process.Exit()
	if x.OOMKilled {
		return runtime.ExitError(x, in.rt.o.Function.Memory, "")
	}
	return runtime.Errorf("Runtime.InitError", http.StatusBadGateway, "the app did not start (%v; %s; python: %s); last output: %s",
		cause, runtime.ExitError(x, in.rt.o.Function.Memory, "").Message, in.rt.interpreter(), in.Last.String())
}

// Invoke sends one request to the shim and copies its response. Errors are
// as httprt's: ctx's error (wrapped) if the request ended, the client
// body's *http.MaxBytesError (wrapped), else an *runtime.Error; wrapped in
// http.ErrAbortHandler when the response had started.
func (in *Instance) Invoke(w http.ResponseWriter, r *http.Request) error {
	if err := in.Refuse(r); err != nil {
		return err
	}
	ctx := r.Context()
	stop := context.AfterFunc(ctx, func() { _ = in.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if t := in.boostEnd.Load(); t != nil {
		// On the timer's goroutine, not before the response is done: a
		// quota write usually takes 25 µs, but ~1% of them milliseconds.
		defer t.Reset(0)
	}
	in.take()
	defer in.drop()

	hasBody := r.Body != nil && r.Body != http.NoBody
	in.wrote = 0
	if err := writeJSON(in.bw, frameRequest, head(r, hasBody)); err != nil {
		err = in.explain(ctx, err, false)
		if in.wrote == 0 && ctx.Err() == nil {
			return &runtime.NotDelivered{Err: err}
		}
		return err
	}
	var body chan error
	if hasBody {
		_ = http.NewResponseController(w).EnableFullDuplex()
		body = make(chan error, 1)
		go func() { body <- in.writeBody(r.Body) }()
	} else if err := writeFrame(in.bw, frameBody, nil); err != nil {
		return in.explain(ctx, err, false)
	}
	started, err := in.copyResponse(w)
	if body != nil {
		if berr := <-body; berr != nil && err == nil {
			// The app answered whole; the client's body broke after that.
			var mbe *http.MaxBytesError
			if !started && errors.As(berr, &mbe) {
				err = berr
			}
		}
	}
	if err != nil {
		return in.explain(ctx, err, started)
	}
	return nil
}

// writeBody streams the client's body as B frames and ends it. A failure to
// read the client's body still ends the body, so the shim stays in step.
func (in *Instance) writeBody(b io.Reader) error {
	buf := make([]byte, 64<<10)
	var rerr error
	for {
		n, err := b.Read(buf)
		if n > 0 {
			if werr := writeFrame(in.bw, frameBody, buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	if werr := writeFrame(in.bw, frameBody, nil); werr != nil {
		return werr
	}
	return rerr
}

// copyResponse reads the shim's frames for one response into w.
func (in *Instance) copyResponse(w http.ResponseWriter) (started bool, err error) {
	var rc *http.ResponseController
	for {
		typ, p, err := readFrame(in.br, *in.buf)
		if err != nil {
			return started, err
		}
		if cap(p) > cap(*in.buf) {
			*in.buf = p[:0]
		}
		switch typ {
		case frameHead:
			var h responseHead
			if err := json.Unmarshal(p, &h); err != nil {
				in.c.Close()
				return started, fmt.Errorf("protocol: response head: %w", err)
			}
			code, err := strconv.Atoi(strings.SplitN(h.Status, " ", 2)[0])
			if err != nil || code < 100 || code > 999 {
				if derr := in.skipResponse(); derr != nil {
					return started, derr
				}
				return started, runtime.Errorf("Runtime.InvalidResponse", http.StatusBadGateway, "the app's status %q is not a status line like \"200 OK\"", h.Status)
			}
			hdr := w.Header()
			streaming := true
			var connection []string
			for _, kv := range h.Headers {
				if http.CanonicalHeaderKey(kv[0]) == "Connection" {
					connection = append(connection, kv[1])
				}
			}
			for _, kv := range h.Headers {
				k := http.CanonicalHeaderKey(kv[0])
				if httpwire.HopByHop(k) || httpwire.Listed(connection, k) {
					continue
				}
				if k == "Content-Length" {
					streaming = false
				}
				hdr[k] = append(hdr[k], latin1(kv[1]))
			}
			w.WriteHeader(code)
			started = true
			if streaming {
				rc = http.NewResponseController(w)
			}
		case frameData:
			if _, err := w.Write(p); errors.Is(err, http.ErrBodyNotAllowed) {
				continue // a body on HEAD, 204 or 304: dropped, as net/http drops it
			} else if err != nil {
				return started, err
			}
			if rc != nil {
				_ = rc.Flush()
			}
		case frameEnd:
			return started, nil
		case frameAppError:
			var e errorPayload
			if err := json.Unmarshal(p, &e); err != nil {
				return started, fmt.Errorf("protocol: app error: %w", err)
			}
			return started || e.Started, runtime.Errorf("Runtime.UnhandledError", http.StatusBadGateway, "%s", e.ErrorMessage)
		default:
			return started, fmt.Errorf("protocol: unexpected frame %q", typ)
		}
	}
}

// skipResponse reads what is left of a response nobody will see, so the
// connection stays in step for the next request.
func (in *Instance) skipResponse() error {
	for {
		typ, _, err := readFrame(in.br, *in.buf)
		if err != nil {
			return err
		}
		if typ == frameEnd || typ == frameAppError {
			return nil
		}
	}
}

// explain turns a failure into what Invoke returns.
func (in *Instance) explain(ctx context.Context, err error, started bool) error {
	var out error
	var mbe *http.MaxBytesError
	var re *runtime.Error
	switch {
	case errors.As(err, &mbe):
		out = fmt.Errorf("invoke instance %s: %w", in.ID, err)
	case ctx.Err() != nil:
		out = fmt.Errorf("invoke instance %s: %w", in.ID, ctx.Err())
	case errors.As(err, &re):
		out = re
	default:
		// The connection broke: the shim died, most likely.
		if runtime.AwaitExit(ctx, in.Process) {
			out = in.EndError()
		} else {
			out = runtime.Errorf("Runtime.ExitError", http.StatusBadGateway, "lost the instance's connection: %v", err)
		}
	}
	if started {
		return fmt.Errorf("%w: %w", http.ErrAbortHandler, out)
	}
	return out
}

// head describes r for the shim.
func head(r *http.Request, hasBody bool) requestHead {
	h := requestHead{
		Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Proto: r.Proto,
		Host: r.Host, Scheme: "http", RemoteAddr: r.RemoteAddr, Length: r.ContentLength,
	}
	if r.TLS != nil {
		h.Scheme = "https"
	}
	if ip, port, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		h.RemoteAddr, h.RemotePort = ip, port
	}
	if !hasBody {
		h.Length = 0
	} else if h.Length == 0 {
		h.Length = -1
	}
	if h.Proto == "" {
		h.Proto = "HTTP/1.1"
	}
	h.Headers = make([][2]string, 0, len(r.Header))
	httpwire.EachHeader(r.Header, func(k, v string) { h.Headers = append(h.Headers, [2]string{k, v}) })
	return h
}

// latin1 turns a header value the shim sent (a str of code points below
// 256, as PEP 3333 requires) back into the bytes it stands for.
func latin1(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			b := make([]byte, 0, len(s))
			for _, r := range s {
				if r > 0xff {
					r = '?' // the shim refuses these; never reached
				}
				b = append(b, byte(r))
			}
			return string(b)
		}
	}
	return s
}

// Stop closes the connection (the shim exits at EOF) and stops the process.
func (in *Instance) Stop(ctx context.Context) error {
	if t := in.boostEnd.Swap(nil); t != nil {
		t.Stop()
	}
	in.closeOnce.Do(func() { in.c.Close() })
	return in.Process.Stop(ctx, stopGrace)
}
