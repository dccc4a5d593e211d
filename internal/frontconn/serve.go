// Package frontconn serves the gateway listener's HTTP/1.1 connections.
// A connection's own goroutine reads each request and runs the handler
// for it, with its own request parser and response writer, for the
// requests it can serve whole: HTTP/1.1, no Transfer-Encoding, no Expect,
// no upgrade, a head that fits its buffer, a path the caller says is fast
// (a routed function). Anything else — and any connection from the
// moment it sends one — is handed, with the bytes already read, to an
// http.Server (the fallback), so every rare case keeps net/http's
// behaviour: 100-continue, chunked request bodies, upgrades, 431 for
// oversize heads, 400 for malformed ones, TLS (handed over at accept).
//
// Why: on the warm path net/http's server costs a goroutine, a read and
// two deadline changes per request for its background read, and its
// request reading and response machinery; the loop watches for a client
// gone only once a request has run longer than watchAfter (docs/
// BENCHMARKS.md, issue 14).
package frontconn

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves a listener. Set its fields before Serve.
type Server struct {
	// Handler serves every request the loop serves itself.
	Handler http.Handler
	// Fast says whether a request (parsed, before its handler) is one the
	// loop serves; false hands the connection to Fallback.
	Fast func(r *http.Request) bool
	// Fallback serves the connections handed over, with its own Handler
	// and limits; its Serve is called by Serve.
	Fallback *http.Server
	// HeaderTimeout bounds reading a request head once it has begun (the
	// first request's from the accept), IdleTimeout the wait for the next
	// request on a kept-alive connection.
	HeaderTimeout, IdleTimeout time.Duration
	// Accepted and Settled, when set, are called with a connection when it
	// is accepted, and when its first request reached a handler (here, or
	// Fallback's: a connection handed over before its first request is
	// Accepted again as what Fallback serves before the original is
	// Settled) or it ended.
	Accepted, Settled func(net.Conn)
	Logger            *slog.Logger

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown bool
	down     atomic.Bool // shutdown, read without mu
	ln       net.Listener
	handoff  *chanListener
	done     chan struct{} // closed when the last connection ended after shutdown
}

// watchAfter: a request still running this long gets a read on its
// connection that cancels its context if the client goes away (net/http
// starts that read for every request).
const watchAfter = 100 * time.Millisecond

// Serve accepts connections on l until Shutdown (or l fails).
func (s *Server) Serve(l net.Listener) error {
	defer l.Close() // as http.Server: also when Shutdown came first
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.ln = l
	s.conns = map[*conn]struct{}{}
	s.handoff = newChanListener(l.Addr())
	s.mu.Unlock()
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	go func() { _ = s.Fallback.Serve(s.handoff) }()
	var tempDelay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			down := s.shutdown
			s.mu.Unlock()
			if down {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// As http.Server: out of descriptors and the like pass.
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				time.Sleep(tempDelay)
				continue
			}
			return err
		}
		tempDelay = 0
		if s.Accepted != nil {
			s.Accepted(nc)
		}
		if _, ok := nc.(*tls.Conn); ok {
			s.handOver(nc, nc, nil, true)
			continue
		}
		c := newConn(s, nc)
		if !s.track(c) {
			nc.Close()
			s.settle(nc)
			continue
		}
		go c.serve()
	}
}

func (s *Server) settle(nc net.Conn) {
	if s.Settled != nil {
		s.Settled(nc)
	}
}

// track adds c to the connections Shutdown waits for; false when shutting
// down.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if s.shutdown && len(s.conns) == 0 && s.done != nil {
		close(s.done)
		s.done = nil
	}
	s.mu.Unlock()
}

// handOver gives nc to Fallback, which first reads buffered (bytes nc
// already gave). orig is the connection as accepted (Settled with it);
// first says no request of it reached a handler yet.
func (s *Server) handOver(orig, nc net.Conn, buffered []byte, first bool) {
	var hc net.Conn = nc
	if len(buffered) > 0 {
		hc = &replayConn{Conn: nc, buf: buffered}
	}
	if first && hc != orig {
		// Still waiting for its first request, now as Fallback's.
		if s.Accepted != nil {
			s.Accepted(hc)
		}
		s.settle(orig)
	}
	if !s.handoff.push(hc) {
		hc.Close()
		s.settle(hc)
		s.settle(orig)
	}
}

// Shutdown stops accepting, closes the connections waiting for a request,
// lets requests under way finish (their connections then close), and shuts
// Fallback down alongside. At ctx's end the connections left are closed
// and ctx's error returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	s.down.Store(true) // before any closeIfIdle: see conn.setIdle
	ln, ho := s.ln, s.handoff
	done := make(chan struct{})
	if len(s.conns) == 0 {
		close(done)
	} else {
		s.done = done
	}
	for c := range s.conns {
		c.closeIfIdle()
	}
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	if ho != nil {
		ho.Close() // also when Fallback's Serve has not begun
	}
	fb := make(chan error, 1)
	if ho != nil {
		go func() { fb <- s.Fallback.Shutdown(ctx) }()
	} else {
		fb <- nil
	}
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-fb
		return ctx.Err()
	}
	return <-fb
}

// chanListener is Fallback's listener: the connections handed over.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	mu     sync.Mutex
	closed bool
	done   chan struct{}
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// push hands c to Fallback's Accept; false once the listener is closed.
func (l *chanListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.done)
	}
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// replayConn reads buf before the connection: the bytes the loop read
// before it handed the connection over.
type replayConn struct {
	net.Conn
	buf []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes a TCP connection, as net/http does before it
// hangs up on a request it refused (431).
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
