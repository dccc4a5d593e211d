package lambdart

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The Runtime API's connections. Stoke serves the bootstrap's HTTP/1.1
// requests itself, with net/http's request parser and the route table of
// routes.go, instead of an http.Server: an invocation is written to the
// bootstrap's waiting GET /next by the goroutine that invokes, which then
// reads the bootstrap's answer off the same connection (InvokeEvent).
// Between invocations the connection's own goroutine reads it. An
// http.Server would hand each event and each answer from one goroutine to
// another, and start a background read per request.

const (
	// maxHeaderBytes bounds a request's head, as http.Server's
	// MaxHeaderBytes does (plus its slack for the request line).
	maxHeaderBytes = 64<<10 + 4096
	// headerTimeout bounds reading a request head once it has begun; a
	// client that idles longer than idleTimeout between requests is not a
	// bootstrap at work.
	headerTimeout = 10 * time.Second
	idleTimeout   = 10 * time.Minute
	// maxDrain is how much of a body a handler left unread is skipped to
	// keep the connection; beyond it the connection is closed.
	maxDrain = 256 << 10
)

// apiConn is one connection from the bootstrap. Its goroutine (loop) owns
// it, except while an invocation is out on it: from the event's delivery
// until its answer, the invoking goroutine reads it.
type apiConn struct {
	in  *Instance
	nc  net.Conn
	lim limited
	br  *bufio.Reader
	bw  *bufio.Writer
	// closing: the last response said Connection: close.
	closing bool
}

// limited bounds what a request head may read (left) and counts nothing
// else: a body is read with left at its maximum.
type limited struct {
	r    io.Reader
	left int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

var errHeadTooLarge = errors.New("request head too large")

// serve accepts the bootstrap's connections until the listener closes.
func (in *Instance) serve(l net.Listener) {
	for {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		c := &apiConn{in: in, nc: nc}
		c.lim = limited{r: nc}
		c.br = bufio.NewReaderSize(&c.lim, 4<<10)
		c.bw = bufio.NewWriterSize(nc, 4<<10)
		if !in.track(c, true) {
			nc.Close()
			return
		}
		go c.loop()
	}
}

// loop reads and serves requests until the connection ends. A GET /next
// parks the connection for the next invocation (next.go); the loop waits
// until the invoker gives it back.
func (c *apiConn) loop() {
	defer c.close()
	for {
		req, err := c.read(idleTimeout)
		if err != nil {
			return
		}
		for p := c.serve(req); p != nil; p = p.then {
			select {
			case <-p.back:
			case <-c.in.stop:
				return
			}
			if p.broken {
				return
			}
		}
		if c.closing {
			return
		}
	}
}

func (c *apiConn) close() {
	c.nc.Close()
	c.in.track(c, false)
}

// read reads the next request's head: waiting for its first byte up to
// idle (none: until the read is interrupted), then up to headerTimeout for
// the rest.
func (c *apiConn) read(idle time.Duration) (*http.Request, error) {
	if idle > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(idle))
	}
	c.lim.left = maxHeaderBytes
	if _, err := c.br.Peek(1); err != nil {
		return nil, err
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(headerTimeout))
	req, err := http.ReadRequest(c.br)
	if err != nil {
		if errors.Is(err, errHeadTooLarge) {
			c.reply(http.StatusRequestHeaderFieldsTooLarge, "Request Header Fields Too Large")
		} else if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isTimeout(err) {
			c.reply(http.StatusBadRequest, "Bad Request")
		}
		return nil, err
	}
	c.lim.left = 1<<63 - 1
	_ = c.nc.SetReadDeadline(time.Time{})
	if req.ProtoMajor != 1 {
		c.reply(http.StatusHTTPVersionNotSupported, "HTTP Version Not Supported")
		return nil, errors.New("not HTTP/1")
	}
	if strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
		c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		if err := c.bw.Flush(); err != nil {
			return nil, err
		}
	}
	return req, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// reply sends a bare error answer to a request that could not be read and
// closes the connection afterwards.
func (c *apiConn) reply(status int, text string) {
	fmt.Fprintf(c.bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		status, http.StatusText(status), len(text), text)
	_ = c.bw.Flush()
	c.closing = true
}

// serve runs req through the route table and sends the answer, unless the
// route parked the connection (a GET /next): then the answer is the
// invoker's to send, and serve returns the parking.
func (c *apiConn) serve(req *http.Request) *parked {
	w := &respWriter{c: c, h: http.Header{}}
	c.in.mux.ServeHTTP(w, req)
	if w.parked != nil {
		return w.parked
	}
	c.finish(w, req)
	return nil
}

// finish completes a response and keeps the connection in step: what the
// handler left of the request body is skipped (up to maxDrain).
func (c *apiConn) finish(w *respWriter, req *http.Request) {
	if req.Close {
		w.h.Set("Connection", "close")
		c.closing = true
	}
	if err := w.finish(); err != nil {
		c.closing = true
	}
	if req.Body != nil {
		if n, _ := io.CopyN(io.Discard, req.Body, maxDrain+1); n > maxDrain {
			c.closing = true
		}
		req.Body.Close()
	}
}

// respWriter is the http.ResponseWriter of the Runtime API's routes: a
// response is sent with its Content-Length, the body straight to the
// connection's buffer when the route set the length (an event), buffered
// otherwise (the small JSON answers).
type respWriter struct {
	c      *apiConn
	h      http.Header
	status int
	direct bool // head written, body goes straight out
	buf    []byte
	parked *parked
}

func (w *respWriter) Header() http.Header { return w.h }

func (w *respWriter) WriteHeader(status int) {
	if w.status != 0 {
		return
	}
	w.status = status
	if w.h.Get("Content-Length") != "" {
		w.writeHead()
		w.direct = true
	}
}

func (w *respWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.direct {
		return w.c.bw.Write(p)
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// writeHead writes the status line and the header fields.
func (w *respWriter) writeHead() {
	bw := w.c.bw
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(w.status))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(w.status))
	bw.WriteString("\r\n")
	_ = w.h.Write(bw)
	bw.WriteString("\r\n")
}

// finish sends what is buffered and flushes.
func (w *respWriter) finish() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.direct {
		w.h.Set("Content-Length", strconv.Itoa(len(w.buf)))
		w.writeHead()
		w.c.bw.Write(w.buf)
	}
	return w.c.bw.Flush()
}

var aLongTimeAgo = time.Unix(1, 0)

// peerClosed says whether the bootstrap closed c while its /next waited
// (or sent something nobody asked for), with one non-blocking peek: an
// event is not written to a connection nobody reads.
func (c *apiConn) peerClosed() bool {
	if c.br.Buffered() > 0 {
		return true
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// n == 0 without error is EOF; EAGAIN means open and quiet.
		closed = n > 0 || err != syscall.EAGAIN
		return true
	})
	return closed || err != nil
}

// connOf is the connection a route's answer goes to.
func connOf(w http.ResponseWriter) *apiConn {
	if rw, ok := w.(*respWriter); ok {
		return rw.c
	}
	return nil
}

// track adds (or removes) a connection of the instance; it refuses one
// once the Runtime API is closed.
func (in *Instance) track(c *apiConn, add bool) bool {
	in.connMu.Lock()
	defer in.connMu.Unlock()
	if !add {
		delete(in.conns, c)
		return true
	}
	if in.conns == nil {
		return false
	}
	in.conns[c] = struct{}{}
	return true
}

// closeConns closes the listener and every connection (their goroutines
// then end).
func (in *Instance) closeConns() {
	in.connMu.Lock()
	conns := in.conns
	in.conns = nil
	in.connMu.Unlock()
	in.l.Close()
	for c := range conns {
		c.nc.Close()
	}
}

// parked is a GET /next waiting for an event on its connection.
type parked struct {
	c      *apiConn
	w      *respWriter
	req    *http.Request
	back   chan struct{} // closed when the invoker gives the connection back
	broken bool          // the invoker left it out of step: close it
	// then is a /next that parked on the connection while the invoker had
	// it (after an answer that came on another connection).
	then *parked
	once sync.Once
}

// giveBack returns the connection to its goroutine.
func (p *parked) giveBack(broken bool) {
	p.once.Do(func() {
		p.broken = broken
		close(p.back)
	})
}
