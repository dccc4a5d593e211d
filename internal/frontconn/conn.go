package frontconn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// bufSize is the read buffer: a request head must fit in it to be
	// served here (a larger one is handed over; net/http answers 431 past
	// its MaxHeaderBytes). Also the write buffer.
	bufSize = 4 << 10
	// maxDrain is how much of a body a handler left unread is skipped to
	// keep the connection, as net/http does; beyond it the connection is
	// closed.
	maxDrain = 256 << 10
)

var aLongTimeAgo = time.Unix(1, 0)

// conn is one connection served by the loop. Its goroutine (serve) owns it;
// while a request runs longer than watchAfter, a watcher reads it too
// (watch).
type conn struct {
	s       *Server
	nc      net.Conn
	cr      connReader
	br      *bufio.Reader
	bw      *bufio.Writer
	base    context.Context // the connection's: the local address
	remote  string
	w       response // reset per request
	pre     []byte   // a response's first bytes, before its head is written
	scratch []byte   // a header key being canonicalized

	// The watcher: timer fires watch after watchAfter; state under mu.
	timer     *time.Timer
	watchDone chan struct{}
	mu        sync.Mutex
	watching  int // watchArmed, watchReading, watchAborted
	cancel    context.CancelFunc
	bodyDone  atomic.Bool // the request's body was read whole (the watcher may read)

	// linger: the client may still be sending a body nobody read; the
	// close waits for it a little (closeWriteAndWait).
	linger bool

	// idle: waiting for a request's first byte (Shutdown closes it then).
	idle   bool
	closed bool // by Shutdown
}

const (
	watchArmed = iota
	watchReading
	watchAborted
)

// connReader is what the read buffer reads: the connection, after the byte
// a watcher may have read (the next request's first).
type connReader struct {
	nc      net.Conn
	hasByte bool
	b       [1]byte
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.hasByte && len(p) > 0 {
		p[0] = r.b[0]
		r.hasByte = false
		return 1, nil
	}
	return r.nc.Read(p)
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, remote: nc.RemoteAddr().String(), watchDone: make(chan struct{}, 1)}
	c.cr.nc = nc
	c.br = bufio.NewReaderSize(&c.cr, bufSize)
	c.bw = bufio.NewWriterSize(nc, bufSize)
	c.base = context.WithValue(context.Background(), http.LocalAddrContextKey, nc.LocalAddr())
	c.timer = time.AfterFunc(time.Hour, c.watch)
	c.timer.Stop()
	return c
}

// closeIfIdle closes c if it waits for a request (Shutdown); one under way
// closes after its response. Called with s.mu held.
func (c *conn) closeIfIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle {
		c.closed = true
		c.nc.Close()
	}
}

// setIdle marks c waiting for a request (idle) or serving one; false when
// Shutdown closed it meanwhile, or is under way.
//
// Shutdown sets down before it looks at any connection, and both look
// under c.mu: either Shutdown finds c idle and closes it, or c finds
// down set and ends.
func (c *conn) setIdle(idle bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || (idle && c.s.down.Load()) {
		return false
	}
	c.idle = idle
	return true
}

// serve reads and serves c's requests in turn until it closes or is
// handed over.
func (c *conn) serve() {
	handed := false
	defer func() {
		if !handed {
			if c.linger {
				c.closeWriteAndWait()
			}
			c.nc.Close()
			c.s.settle(c.nc)
		}
		c.s.untrack(c)
	}()
	first := true
	for {
		if !c.setIdle(true) {
			return
		}
		// One deadline per request on the warm path: the idle wait's (the
		// first request's head timeout); the head's own only if it comes in
		// more than one read.
		headDeadline := true
		if c.br.Buffered() == 0 {
			timeout := c.s.IdleTimeout
			if first {
				timeout, headDeadline = c.s.HeaderTimeout, false
			}
			_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
			if _, err := c.br.Peek(1); err != nil {
				return
			}
		}
		if !c.setIdle(false) {
			return
		}
		head, ok, err := c.readHead(headDeadline)
		if err != nil {
			return // as net/http: a read error or timeout closes without an answer
		}
		var req *http.Request
		var body *bodyReader
		var cancel context.CancelFunc
		if ok {
			var parsed http.Request
			parsed, body, ok = c.parse(head)
			if ok {
				req, cancel = c.withContext(&parsed)
			}
		}
		if ok && !c.s.Fast(req) {
			ok = false
			cancel()
		}
		if !ok {
			handed = true
			c.handOver(first)
			return
		}
		_, _ = c.br.Discard(len(head))
		if body != nil {
			_ = c.nc.SetReadDeadline(time.Time{}) // a body takes as long as it takes, as in net/http
		}
		if first {
			c.s.settle(c.nc)
			first = false
		}
		if !c.serveOne(req, cancel, body) {
			return
		}
	}
}

// withContext is the request to serve: parsed in a context of its own,
// which the returned function cancels. parsed stays on the caller's stack,
// so this copy is the request's only allocation.
func (c *conn) withContext(parsed *http.Request) (*http.Request, context.CancelFunc) {
	ctx, cancel := context.WithCancel(c.base)
	return parsed.WithContext(ctx), cancel
}

// readHead waits until the buffer holds a whole request head and returns
// it (still buffered); ok false when it cannot (a head larger than the
// buffer), with the bytes so far still buffered.
func (c *conn) readHead(setDeadline bool) (head []byte, ok bool, err error) {
	for {
		n := c.br.Buffered()
		b, _ := c.br.Peek(n)
		if end := headEnd(b); end > 0 {
			return b[:end], true, nil
		}
		if n >= bufSize {
			return nil, false, nil
		}
		if setDeadline {
			_ = c.nc.SetReadDeadline(time.Now().Add(c.s.HeaderTimeout))
			setDeadline = false
		}
		if _, err := c.br.Peek(n + 1); err != nil {
			return nil, false, err
		}
	}
}

// handOver gives the connection and every byte buffered to Fallback.
func (c *conn) handOver(first bool) {
	var buf []byte
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		buf = append([]byte(nil), b...)
	}
	if c.cr.hasByte {
		buf = append(buf, c.cr.b[0])
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	c.s.handOver(c.nc, c.nc, buf, first)
}

// serveOne runs the handler for req (in a context cancel ends) and
// finishes its response; false when the connection is to close.
func (c *conn) serveOne(req *http.Request, cancel context.CancelFunc, body *bodyReader) (keep bool) {
	// A response per request: a handler that kept its writer cannot
	// write into the next one.
	w := newResponse(c, req)
	c.bodyDone.Store(body == nil)
	c.mu.Lock()
	c.watching, c.cancel = watchArmed, cancel
	c.mu.Unlock()
	c.timer.Reset(watchAfter)

	aborted := c.runHandler(w, req)
	c.stopWatch()
	cancel()
	if !aborted {
		w.finish()
	}
	w.done = true
	if body != nil {
		body.closed = true
		c.linger = body.left > 0 && !aborted // a broken response is cut off at once, as net/http does
	}
	if aborted || w.err != nil || w.closeAfter {
		return false
	}
	if c.linger {
		if body.left > maxDrain {
			return false
		}
		if _, err := io.CopyN(io.Discard, c.br, body.left); err != nil {
			return false
		}
		c.linger = false
	}
	return true
}

// lingerFor bounds closeWriteAndWait, as net/http's rstAvoidanceDelay.
const lingerFor = 500 * time.Millisecond

// closeWriteAndWait ends a connection whose client may still be sending a
// body nobody read: closing with unread bytes resets the connection, and
// the reset can destroy the response before the client reads it (a 413).
// As net/http, it says it is done writing and gives the client a moment,
// reading what it sends meanwhile.
func (c *conn) closeWriteAndWait() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(lingerFor))
	_, _ = io.Copy(io.Discard, c.nc)
}

// runHandler calls the handler; true when it panicked (the connection is
// then closed without finishing the response, as net/http does).
func (c *conn) runHandler(w *response, req *http.Request) (aborted bool) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		aborted = true
		if p != http.ErrAbortHandler {
			c.s.Logger.Error("panic serving "+c.remote, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	c.s.Handler.ServeHTTP(w, req)
	return false
}

// watch runs watchAfter into a request (the timer's goroutine): once the
// request's body was read, it reads the connection, so a client gone
// cancels the request's context. A byte read is the next request's first
// (pipelining); it is kept for the loop.
func (c *conn) watch() {
	c.mu.Lock()
	if c.watching != watchArmed {
		c.mu.Unlock()
		c.watchDone <- struct{}{}
		return
	}
	if !c.bodyDone.Load() || c.br.Buffered() > 0 {
		// The handler still reads the body, or the client already sent
		// more (nothing to read before the loop's next request): look again
		// later.
		c.timer.Reset(watchAfter)
		c.mu.Unlock()
		return
	}
	c.watching = watchReading
	// Under mu: stopWatch's deadline in the past comes after this.
	_ = c.nc.SetReadDeadline(time.Time{})
	c.mu.Unlock()
	n, err := c.nc.Read(c.cr.b[:])
	c.mu.Lock()
	if n == 1 {
		c.cr.hasByte = true
	} else if err != nil && c.watching == watchReading {
		c.cancel() // the client went away (or broke the connection)
	}
	c.mu.Unlock()
	c.watchDone <- struct{}{}
}

// stopWatch stops the watcher of the request that ended, waiting for a
// read under way to give up.
func (c *conn) stopWatch() {
	if c.timer.Stop() {
		return
	}
	c.mu.Lock()
	st := c.watching
	c.watching = watchAborted
	c.mu.Unlock()
	switch {
	case st == watchReading:
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
	case c.timer.Stop():
		return // it ran and looked again later: it will not run now
	}
	<-c.watchDone
}

// bodyReader is a request body of a known length.
type bodyReader struct {
	c      *conn
	left   int64
	closed bool // the request ended: nothing more is read
}

var errBodyAfterResponse = errors.New("frontconn: body read after the request ended")

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errBodyAfterResponse
	}
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.c.br.Read(p)
	b.left -= int64(n)
	if b.left == 0 {
		b.c.bodyDone.Store(true)
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *bodyReader) Close() error { return nil }
