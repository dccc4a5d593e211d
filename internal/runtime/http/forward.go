package httprt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/runtime/httpwire"
)

// The forwarder: each instance keeps a few HTTP/1.1 connections to its app
// and runs a request on one of them in the caller's goroutine (write the
// request, read the response, copy it), instead of http.Transport, whose
// per-connection read and write goroutines cost two hand-offs per request.

// conn is one kept-alive loopback connection to the app.
type conn struct {
	nc net.Conn
	br *bufio.Reader
	bw *bufio.Writer
	// reused: it served (or was opened by a probe) before, so the app may
	// have closed it meanwhile; a failure before the response is then retried.
	reused    bool
	idleSince time.Time
	// interrupt unblocks every read and write for good. Bound once per
	// connection so watching a request's context does not allocate it.
	interrupt func()
	field     func(k, v string) // writeField, bound once
	// bodySent: the body writer has the last of the body in hand; the app
	// may already have it and have answered before the writer reports.
	bodySent atomic.Bool
	raw      syscall.RawConn    // for peerClosed; nil if the connection has none
	peekFn   func(uintptr) bool // peek, bound once
	peekBuf  [1]byte
	closed   bool // what the last peek saw
	// wrote counts the bytes the kernel took for the request being sent
	// (runtime.NotDelivered: none means the app cannot have seen it).
	// Reset per request, read before the body writer starts.
	wrote int64
	num   [20]byte // scratch for formatting numbers without allocating
}

var (
	dialer       = &net.Dialer{Timeout: time.Second}
	aLongTimeAgo = time.Unix(1, 0)
	// idleCheckAfter: a connection idle this long is checked for a close by
	// the app (one non-blocking peek) before use. Zero: every time. An app
	// that answers and then dies (a panic after the response, an exit)
	// has closed its connections by the time the next request comes, and
	// the check is what tells that request was never delivered (it is run
	// on another instance) from one the app received; the peek costs a
	// syscall, no allocation (BenchmarkIdleCheck).
	idleCheckAfter time.Duration = 0
	// bodyGrace: how long a whole response waits for a body writer that has
	// sent its last byte to report, before the connection is given up.
	bodyGrace = 50 * time.Millisecond
)

func newConn(nc net.Conn) *conn {
	c := &conn{nc: nc, br: bufio.NewReaderSize(nc, 4<<10)}
	c.bw = bufio.NewWriterSize(c, 4<<10)
	c.interrupt = func() { _ = nc.SetDeadline(aLongTimeAgo) }
	c.field = c.writeField
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	c.peekFn = c.peek
	return c
}

// Write writes to the app's connection, counting what the kernel took.
func (c *conn) Write(p []byte) (int, error) {
	n, err := c.nc.Write(p)
	c.wrote += int64(n)
	return n, err
}

// peerClosed says whether the app closed c while it was idle (or sent
// something nobody asked for), without blocking: one non-blocking peek.
func (c *conn) peerClosed() bool {
	if c.br.Buffered() > 0 {
		return true
	}
	if c.raw == nil {
		return false
	}
	if err := c.raw.Read(c.peekFn); err != nil {
		return true
	}
	return c.closed
}

// peek is peerClosed's look at the socket; bound once per connection (and
// its buffer a field) so a check does not allocate.
func (c *conn) peek(fd uintptr) bool {
	n, _, err := syscall.Recvfrom(int(fd), c.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	// n == 0 without error is EOF; EAGAIN means open and quiet.
	c.closed = n > 0 || err != syscall.EAGAIN
	return true
}

// get takes an idle connection to the app, most recently used first, or
// dials one (always, when fresh).
func (in *Instance) get(ctx context.Context, fresh bool) (*conn, error) {
	for !fresh {
		in.mu.Lock()
		n := len(in.idle)
		if n == 0 {
			in.mu.Unlock()
			break
		}
		c := in.idle[n-1]
		in.idle[n-1] = nil
		in.idle = in.idle[:n-1]
		in.mu.Unlock()
		if time.Since(c.idleSince) < idleCheckAfter || !c.peerClosed() {
			return c, nil
		}
		c.nc.Close()
	}
	nc, err := in.dial(ctx, "tcp", in.addr)
	if err != nil {
		return nil, err
	}
	return newConn(nc), nil
}

// put keeps c for the next request, up to one connection per request the
// instance may serve at once; the rest are closed.
func (in *Instance) put(c *conn) {
	c.reused = true
	c.idleSince = time.Now()
	in.mu.Lock()
	if !in.closed && len(in.idle) < in.maxIdle {
		in.idle = append(in.idle, c)
		in.mu.Unlock()
		return
	}
	in.mu.Unlock()
	c.nc.Close()
}

// closeConns closes the idle connections and every one returned later.
func (in *Instance) closeConns() {
	in.mu.Lock()
	idle := in.idle
	in.idle, in.closed = nil, true
	in.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// call is one request in flight on a connection.
type call struct {
	c *conn
	// stop stops watching the request's context; false means the watcher
	// already interrupted the connection.
	stop func() bool
	// body, when set, gets the result of the goroutine writing a large body.
	body chan error
}

// bodyError is a failure to read the client's request body (for example
// *http.MaxBytesError), as opposed to a failure talking to the app.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "read request body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// roundTrip sends r to the app and reads the response head. buf (bufSize
// bytes) holds a small request body. On success the caller owns cl until
// finish. Errors are returned as they are; the caller explains them.
//
// A body of up to bufSize bytes with a known length is read first and
// written with the head, so the request can be sent again. A larger or
// chunked body is written by a goroutine while this one reads the response:
// an app may answer while it reads (an echo), and writing all of the body
// before reading could fill both socket buffers and deadlock.
func (in *Instance) roundTrip(ctx context.Context, r *http.Request, buf []byte) (*http.Response, call, error) {
	n := r.ContentLength
	hasBody := r.Body != nil && r.Body != http.NoBody
	if !hasBody {
		n = 0
	} else if n == 0 {
		n = -1 // a body of unknown length, as http.Transport takes it
	}
	var small []byte
	if n > 0 && n <= int64(len(buf)) {
		if _, err := io.ReadFull(r.Body, buf[:n]); err != nil {
			return nil, call{}, &bodyError{err}
		}
		small = buf[:n]
	}
	wrote := false // any byte of r went to a connection: delivered
	undelivered := func(err error) error {
		if wrote {
			return err
		}
		return &runtime.NotDelivered{Err: err, Body: bytes.Clone(small)}
	}
	for retried := false; ; retried = true {
		c, err := in.get(ctx, retried) // the others kept may be as stale
		if err != nil {
			return nil, call{}, undelivered(err)
		}
		cl := call{c: c}
		if ctx.Done() != nil {
			cl.stop = context.AfterFunc(ctx, c.interrupt)
		}
		c.wrote = 0
		c.writeHead(r, n, in.addr)
		c.bw.Write(small)
		err = c.bw.Flush()
		wrote = wrote || c.wrote > 0
		if err == nil && hasBody && small == nil {
			cl.body = make(chan error, 1)
			go c.writeBody(r.Body, n, cl.body)
		}
		// Waiting for the first byte tells "the app never answered" (maybe
		// it closed this connection while idle) from a broken response.
		answered := false
		if err == nil {
			_, err = c.br.Peek(1)
			answered = err == nil
		}
		var res *http.Response
		if err == nil {
			res, err = readResponse(c.br, r)
		}
		if err == nil {
			return res, cl, nil
		}
		if berr := in.finish(cl, false); berr != nil {
			var be *bodyError
			if errors.As(berr, &be) {
				return nil, call{}, berr // the client's body failed, which broke the request
			}
		}
		if retried || answered || !c.reused || cl.body != nil || ctx.Err() != nil || !replayable(r) {
			return nil, call{}, undelivered(err)
		}
	}
}

// replayable: the request may be sent again after a connection broke before
// any answer, because it may have reached the app without harm (RFC 9110
// idempotent methods, or an idempotency key), as http.Transport decides.
func replayable(r *http.Request) bool {
	switch r.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return r.Header["Idempotency-Key"] != nil || r.Header["X-Idempotency-Key"] != nil
}

// readResponse reads the final response head, skipping 1xx ones.
func readResponse(br *bufio.Reader, r *http.Request) (*http.Response, error) {
	for {
		res, err := http.ReadResponse(br, r)
		if err != nil {
			return nil, err
		}
		if res.StatusCode >= 200 {
			return res, nil
		}
		if res.StatusCode == http.StatusSwitchingProtocols {
			return nil, errors.New("unexpected 101 Switching Protocols")
		}
	}
}

// finish ends a call: it waits for the body writer (stopping it if the app
// answered without reading all of the body), then keeps the connection if
// reuse says the response was read whole and nothing interrupted it. It
// returns the body writer's error.
func (in *Instance) finish(cl call, reuse bool) error {
	if cl.stop != nil && !cl.stop() {
		reuse = false
	}
	var err error
	if cl.body != nil {
		select {
		case err = <-cl.body:
		default:
			// The app answered whole; if it also has the whole body, the
			// writer is only about to report and the connection stays good.
			if !reuse || !cl.c.bodySent.Load() || !waitFor(cl.body, &err) {
				cl.c.interrupt()
				err = <-cl.body
				reuse = false
			}
		}
	}
	if reuse && err == nil {
		in.put(cl.c)
	} else {
		cl.c.nc.Close()
	}
	return err
}

// waitFor waits up to bodyGrace for the body writer's result.
func waitFor(body <-chan error, err *error) bool {
	t := time.NewTimer(bodyGrace)
	defer t.Stop()
	select {
	case *err = <-body:
		return true
	case <-t.C:
		return false
	}
}

// writeBody copies a large or chunked request body to the app. A failure to
// read the client's body interrupts the connection, so the reader waiting
// for a response gives up; a failure to write does not, as the app may
// have answered early.
func (c *conn) writeBody(body io.Reader, n int64, done chan<- error) {
	bp := buffers.Get().(*[bufSize]byte)
	err := c.copyBody(body, n, bp[:])
	buffers.Put(bp)
	if _, ok := err.(*bodyError); ok {
		c.interrupt()
	}
	done <- err
}

func (c *conn) copyBody(body io.Reader, n int64, buf []byte) error {
	w := c.bw
	c.bodySent.Store(false)
	for left := n; n < 0 || left > 0; {
		p := buf
		if n >= 0 && left < int64(len(p)) {
			p = p[:left]
		}
		k, err := body.Read(p)
		if k > 0 {
			if n < 0 {
				w.Write(strconv.AppendInt(c.num[:0], int64(k), 16))
				w.WriteString("\r\n")
			}
			w.Write(p[:k])
			if n < 0 {
				w.WriteString("\r\n")
			}
			left -= int64(k)
			if left == 0 {
				c.bodySent.Store(true)
			}
			if werr := w.Flush(); werr != nil {
				return werr
			}
			if left == 0 {
				break // all n bytes sent
			}
		}
		if err == io.EOF && n < 0 {
			break
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return &bodyError{err}
		}
	}
	if n < 0 {
		w.WriteString("0\r\n\r\n")
	}
	c.bodySent.Store(true)
	return w.Flush()
}

// writeHead buffers the request line and headers: those httpwire.EachHeader
// passes on, Host, and framing for a body of n bytes (-1: chunked). The
// request was checked with httpwire.Validate. Errors show up at the next
// Flush.
func (c *conn) writeHead(r *http.Request, n int64, addr string) {
	w := c.bw
	w.WriteString(r.Method)
	w.WriteByte(' ')
	w.WriteString(r.URL.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	if host == "" {
		host = addr
	}
	w.WriteString(host)
	w.WriteString("\r\n")
	httpwire.EachHeader(r.Header, c.field)
	if httpwire.Listed(r.Header["Te"], "trailers") {
		w.WriteString("Te: trailers\r\n") // gRPC needs it to pass
	}
	switch {
	case n > 0:
		w.WriteString("Content-Length: ")
		w.Write(strconv.AppendInt(c.num[:0], n, 10))
		w.WriteString("\r\n")
	case n < 0:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	case r.Method == "POST" || r.Method == "PUT" || r.Method == "PATCH":
		w.WriteString("Content-Length: 0\r\n") // some servers want a length (411)
	}
	w.WriteString("\r\n")
}

// field writes one header field; c.field is bound once per connection, so
// passing it to EachHeader does not allocate.
func (c *conn) writeField(k, v string) {
	w := c.bw
	w.WriteString(k)
	w.WriteString(": ")
	w.WriteString(v)
	w.WriteString("\r\n")
}
