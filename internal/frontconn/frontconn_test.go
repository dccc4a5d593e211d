package frontconn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rig is a Server on loopback: paths under /fast are the loop's, the rest
// Fallback's. Each response says which served it (X-Via).
type rig struct {
	t        *testing.T
	s        *Server
	addr     string
	calls    atomic.Int64 // handler calls, both sides
	accepted atomic.Int64
	mu       sync.Mutex
	pending  map[net.Conn]bool // Accepted and not Settled
	served   chan error
}

func newRig(t *testing.T, h http.HandlerFunc, tune func(*Server)) *rig {
	t.Helper()
	r := &rig{t: t, pending: map[net.Conn]bool{}, served: make(chan error, 1)}
	handler := func(via string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r.calls.Add(1)
			w.Header().Set("X-Via", via)
			h(w, req)
		})
	}
	fb := &http.Server{Handler: handler("fallback"), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	r.s = &Server{
		Handler:       handler("loop"),
		Fast:          func(req *http.Request) bool { return strings.HasPrefix(req.URL.Path, "/fast") },
		Fallback:      fb,
		HeaderTimeout: 10 * time.Second,
		IdleTimeout:   2 * time.Minute,
		Accepted: func(c net.Conn) {
			r.accepted.Add(1)
			r.mu.Lock()
			r.pending[c] = true
			r.mu.Unlock()
		},
		Settled: func(c net.Conn) {
			r.mu.Lock()
			delete(r.pending, c)
			r.mu.Unlock()
		},
	}
	if tune != nil {
		tune(r.s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	go func() { r.served <- r.s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-r.served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return r
}

// dial is a raw client connection.
func (r *rig) dial() (net.Conn, *bufio.Reader) {
	r.t.Helper()
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // a hung test fails, not hangs
	return c, bufio.NewReader(c)
}

func send(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

// hello answers "hello <path>" with its own Content-Length; POSTs echo.
func hello(w http.ResponseWriter, r *http.Request) {
	if r.Method == "POST" {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "got %q", b)
		return
	}
	body := "hello " + r.URL.Path
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	io.WriteString(w, body)
}

func TestKeepAliveManyRequests(t *testing.T) {
	r := newRig(t, hello, nil)
	c, br := r.dial()
	for i := range 300 {
		send(t, c, fmt.Sprintf("GET /fast/%d HTTP/1.1\r\nHost: x\r\n\r\n", i))
		res, body := read(t, br, "GET")
		if res.StatusCode != 200 || body != fmt.Sprintf("hello /fast/%d", i) || res.Header.Get("X-Via") != "loop" || res.Close {
			t.Fatalf("request %d: %d %q via %q close %v", i, res.StatusCode, body, res.Header.Get("X-Via"), res.Close)
		}
		if res.Header.Get("Date") == "" {
			t.Fatal("no Date")
		}
	}
	if n := r.accepted.Load(); n != 1 {
		t.Errorf("%d connections accepted", n)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) != 0 {
		t.Errorf("a connection whose request was served is still pending")
	}
}

func TestConnectionClose(t *testing.T) {
	r := newRig(t, hello, nil)
	c, br := r.dial()
	send(t, c, "GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	res, body := read(t, br, "GET")
	if res.StatusCode != 200 || body != "hello /fast" || !res.Close || res.Header.Get("X-Via") != "loop" {
		t.Fatalf("%d %q close %v via %q", res.StatusCode, body, res.Close, res.Header.Get("X-Via"))
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("after Connection: close: %d bytes, %v; want EOF", n, err)
	}
}

func TestContentLengthBody(t *testing.T) {
	r := newRig(t, hello, nil)
	c, br := r.dial()
	for range 3 {
		send(t, c, "POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
		res, body := read(t, br, "POST")
		if res.StatusCode != 200 || body != `got "hello"` || res.Header.Get("X-Via") != "loop" {
			t.Fatalf("%d %q via %q", res.StatusCode, body, res.Header.Get("X-Via"))
		}
	}
}

// A body the handler leaves unread is skipped; the next request is read
// from after it.
func TestUnreadBodySkipped(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ignored") }, nil)
	c, br := r.dial()
	send(t, c, "POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	for i := range 2 {
		res, body := read(t, br, "GET")
		if res.StatusCode != 200 || body != "ignored" {
			t.Fatalf("response %d: %d %q", i, res.StatusCode, body)
		}
	}
}

func TestExpectContinueHandedOver(t *testing.T) {
	r := newRig(t, hello, nil)
	c, br := r.dial()
	send(t, c, "POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("%q %v; want 100 Continue before the body is sent", line, err)
	}
	if l, _ := br.ReadString('\n'); l != "\r\n" {
		t.Fatalf("after 100: %q", l)
	}
	send(t, c, "hello")
	res, body := read(t, br, "POST")
	if res.StatusCode != 200 || body != `got "hello"` || res.Header.Get("X-Via") != "fallback" {
		t.Fatalf("%d %q via %q", res.StatusCode, body, res.Header.Get("X-Via"))
	}
}

func TestChunkedBodyHandedOver(t *testing.T) {
	r := newRig(t, hello, nil)
	c, br := r.dial()
	// A fast request first: the connection is the loop's, then handed over.
	send(t, c, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	if res, body := read(t, br, "GET"); res.Header.Get("X-Via") != "loop" || body != "hello /fast" {
		t.Fatalf("via %q %q", res.Header.Get("X-Via"), body)
	}
	send(t, c, "POST /fast HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n")
	res, body := read(t, br, "POST")
	if res.StatusCode != 200 || body != `got "hello"` || res.Header.Get("X-Via") != "fallback" {
		t.Fatalf("%d %q via %q", res.StatusCode, body, res.Header.Get("X-Via"))
	}
	// The connection stays usable, now Fallback's.
	send(t, c, "GET /fast/2 HTTP/1.1\r\nHost: x\r\n\r\n")
	if res, body := read(t, br, "GET"); res.StatusCode != 200 || body != "hello /fast/2" {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
}

func TestOversizeHeadGets431(t *testing.T) {
	r := newRig(t, hello, nil)
	c, br := r.dial()
	send(t, c, "GET /fast HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 70<<10)+"\r\n\r\n")
	res, _ := read(t, br, "GET")
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", res.StatusCode)
	}
	if n := r.calls.Load(); n != 0 {
		t.Errorf("handler called %d times", n)
	}
	// A head larger than the loop's buffer but within the limit is served.
	c2, br2 := r.dial()
	send(t, c2, "GET /fast HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 8<<10)+"\r\n\r\n")
	if res, body := read(t, br2, "GET"); res.StatusCode != 200 || body != "hello /fast" {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
}

// A client that starts a head and never ends it is closed at the head
// timeout, unanswered — on a new connection and between kept-alive
// requests.
func TestSlowHeadClosed(t *testing.T) {
	r := newRig(t, hello, func(s *Server) { s.HeaderTimeout = 300 * time.Millisecond })
	c, br := r.dial()
	send(t, c, "GET /fast HTTP/1.1\r\nHost:")
	if n, err := br.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read %d bytes, %v; want the connection closed", n, err)
	}
	c2, br2 := r.dial()
	send(t, c2, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	if res, _ := read(t, br2, "GET"); res.StatusCode != 200 {
		t.Fatal(res.StatusCode)
	}
	send(t, c2, "GET /fast HTTP/1.1\r\n")
	if n, err := br2.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read %d bytes, %v; want the connection closed", n, err)
	}
	if n := r.calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
}

// An upgrade goes to Fallback, whose handler may hijack the connection.
func TestUpgradeHandedOver(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Upgrade") != "echo" {
			hello(w, req)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo: " + line)
		brw.Flush()
	}, nil)
	c, br := r.dial()
	send(t, c, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	read(t, br, "GET")
	send(t, c, "GET /fast/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	res, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("%v %v", res, err)
	}
	send(t, c, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo: ping\n" {
		t.Fatalf("%q %v", line, err)
	}
}

// Requests sent together are answered in order, across the loop and a
// hand-over in the middle (the bytes after it go to Fallback).
func TestPipelinedInOrder(t *testing.T) {
	r := newRig(t, hello, nil)
	c, br := r.dial()
	send(t, c, "GET /fast/1 HTTP/1.1\r\nHost: x\r\n\r\n"+
		"POST /fast/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"+
		"GET /fast/3 HTTP/1.1\r\nHost: x\r\n\r\n"+
		"GET /slow/4 HTTP/1.1\r\nHost: x\r\n\r\n"+
		"GET /fast/5 HTTP/1.1\r\nHost: x\r\n\r\n")
	want := []struct{ body, via string }{
		{"hello /fast/1", "loop"}, {`got "hi"`, "loop"}, {"hello /fast/3", "loop"},
		{"hello /slow/4", "fallback"}, {"hello /fast/5", "fallback"},
	}
	for i, w := range want {
		res, body := read(t, br, "GET")
		if body != w.body || res.Header.Get("X-Via") != w.via {
			t.Errorf("response %d: %q via %q, want %q via %q", i, body, res.Header.Get("X-Via"), w.body, w.via)
		}
	}
}

// A malformed request line or field gets net/http's 400, and no handler
// runs.
func TestMalformedRequest400(t *testing.T) {
	r := newRig(t, hello, nil)
	for _, req := range []string{
		"GET /fast HTTP/1.1 extra\r\nHost: x\r\n\r\n",
		"G\x01T /fast HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /fast\r\nHost: x\r\n\r\n",
		"GET /fast HTTP/1.1\r\nHost: x\r\nBad Field: 1\r\n\r\n",
		"GET /fast HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
		"GET /fast HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
		"GET /fast HTTP/1.1\r\n\r\n",
		"POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
		"GET /fast HTTP/1.1\r\nHost: a b\r\n\r\n",
	} {
		c, br := r.dial()
		send(t, c, req)
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != http.StatusBadRequest {
			t.Errorf("%q: %v %v, want 400", req, res, err)
		}
	}
	if n := r.calls.Load(); n != 0 {
		t.Errorf("handler called %d times", n)
	}
}

// The response framing: a short response gets a Content-Length, a flushed
// one is chunked with its trailers, a missing Content-Type is sniffed,
// HEAD gets no body, 204 none either.
func TestResponseFraming(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/fast/short":
			io.WriteString(w, "<html>hi</html>")
		case "/fast/stream":
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "one ")
			http.NewResponseController(w).Flush()
			io.WriteString(w, "two")
			w.Header().Set(http.TrailerPrefix+"X-Sum", "42")
		case "/fast/big":
			w.Write([]byte(strings.Repeat("x", 10000)))
		case "/fast/none":
			w.WriteHeader(http.StatusNoContent)
		case "/fast/head":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		}
	}, nil)
	c, br := r.dial()
	send(t, c, "GET /fast/short HTTP/1.1\r\nHost: x\r\n\r\n")
	res, body := read(t, br, "GET")
	if res.ContentLength != int64(len(body)) || body != "<html>hi</html>" || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("short: length %d %q type %q", res.ContentLength, body, res.Header.Get("Content-Type"))
	}
	send(t, c, "GET /fast/stream HTTP/1.1\r\nHost: x\r\n\r\n")
	res, body = read(t, br, "GET")
	if len(res.TransferEncoding) != 1 || body != "one two" || res.Trailer.Get("X-Sum") != "42" {
		t.Errorf("stream: %v %q trailer %v", res.TransferEncoding, body, res.Trailer)
	}
	send(t, c, "GET /fast/big HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body = read(t, br, "GET"); len(body) != 10000 {
		t.Errorf("big: %d bytes", len(body))
	}
	send(t, c, "GET /fast/none HTTP/1.1\r\nHost: x\r\n\r\n")
	if res, body = read(t, br, "GET"); res.StatusCode != 204 || body != "" {
		t.Errorf("none: %d %q", res.StatusCode, body)
	}
	send(t, c, "HEAD /fast/head HTTP/1.1\r\nHost: x\r\n\r\n")
	if res, body = read(t, br, "HEAD"); res.StatusCode != 200 || res.ContentLength != 5 || body != "" {
		t.Errorf("head: %d %d %q", res.StatusCode, res.ContentLength, body)
	}
	send(t, c, "GET /fast/head HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, body = read(t, br, "GET"); body != "hello" {
		t.Errorf("after HEAD: %q", body)
	}
}

// A client that goes away while its request runs cancels the request's
// context (once the request has run watchAfter, as the loop watches);
// a panic closes the connection unanswered.
func TestClientGoneCancels(t *testing.T) {
	gone := make(chan error, 1)
	started := make(chan struct{})
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/fast/panic" {
			panic(http.ErrAbortHandler)
		}
		close(started)
		<-req.Context().Done()
		gone <- req.Context().Err()
	}, nil)
	c, _ := r.dial()
	send(t, c, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	c.Close()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Errorf("context: %v", err)
	}
	c2, br2 := r.dial()
	send(t, c2, "GET /fast/panic HTTP/1.1\r\nHost: x\r\n\r\n")
	if n, err := br2.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("after a panic: %d bytes, %v; want the connection closed", n, err)
	}
}

// Shutdown closes an idle connection, lets a request under way finish
// (saying Connection: close), and returns once both are done.
func TestShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/fast/wait" {
			close(started)
			<-release
		}
		io.WriteString(w, "done")
	}, nil)
	idle, ibr := r.dial()
	send(t, idle, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	read(t, ibr, "GET")
	busy, bbr := r.dial()
	send(t, busy, "GET /fast/wait HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	down := make(chan error, 1)
	go func() { down <- r.s.Shutdown(context.Background()) }()
	if n, err := ibr.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("idle connection: %d bytes, %v; want it closed", n, err)
	}
	close(release)
	res, body := read(t, bbr, "GET")
	if body != "done" || !res.Close {
		t.Errorf("busy: %q close %v", body, res.Close)
	}
	if err := <-down; err != nil {
		t.Error(err)
	}
}

// A refusal of a large body the handler does not read (the gateway's 413)
// reaches the client whole while it is still sending, and the connection
// closes after it.
func TestUnreadLargeBodyRefused(t *testing.T) {
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	}, nil)
	for range 5 {
		c, br := r.dial()
		const n = 4 << 20
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			io.WriteString(c, fmt.Sprintf("POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", n))
			c.Write(make([]byte, n)) // fails once the server hangs up: not read
		}()
		res, body := read(t, br, "POST")
		if res.StatusCode != http.StatusRequestEntityTooLarge || body != "too large\n" || !res.Close {
			t.Errorf("%d %q close %v", res.StatusCode, body, res.Close)
		}
		c.Close()
		<-sent
	}
}

// A field ending in a bare LF is a field to net/http: the loop must not
// skip it (here it makes the body chunked: skipped, the body would be
// read as the next request).
func TestBareLFFieldNotSkipped(t *testing.T) {
	r := newRig(t, hello, nil)
	c, br := r.dial()
	send(t, c, "POST /fast HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\n\r\n5\r\nhello\r\n0\r\n\r\n"+
		"GET /fast/next HTTP/1.1\r\nHost: x\r\n\r\n")
	if res, body := read(t, br, "POST"); res.StatusCode != 200 || body != `got "hello"` {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
	if res, body := read(t, br, "GET"); res.StatusCode != 200 || body != "hello /fast/next" {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
}

// The loop's response writer frames what a handler does as net/http's
// server does: the same handlers, answered by the loop (/fast) and by
// Fallback (/slow), read back the same.
func TestResponsesAsNetHTTP(t *testing.T) {
	cases := map[string]http.HandlerFunc{
		"short":  func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") },
		"empty":  func(w http.ResponseWriter, r *http.Request) {},
		"status": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503); io.WriteString(w, "{}") },
		"length": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "3")
			io.WriteString(w, "abc")
		},
		"notype": func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil
			io.WriteString(w, "<html>")
		},
		"typed": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "a/b")
			io.WriteString(w, "x")
		},
		"big":    func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, strings.Repeat("y", 5000)) },
		"nobody": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) },
		"304":    func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Etag", `"a"`); w.WriteHeader(304) },
		"flushed": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b")
		},
		"trailer": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-T")
			io.WriteString(w, "body")
			w.Header().Set("X-T", "1")
			w.Header().Set(http.TrailerPrefix+"X-U", "2")
		},
		"close": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		},
		"hints": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</a>")
			w.WriteHeader(103)
			io.WriteString(w, "x")
		},
		"multi": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("X-M", "1")
			w.Header().Add("X-M", "2")
			w.WriteHeader(201)
		},
		"header": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Bad", "a\r\nInjected: 1")
			io.WriteString(w, "x")
		},
	}
	r := newRig(t, func(w http.ResponseWriter, req *http.Request) {
		cases[req.URL.Path[strings.LastIndexByte(req.URL.Path, '/')+1:]](w, req)
	}, nil)
	type seen struct {
		status        int
		header        http.Header
		te            []string
		length        int64
		body          string
		trailer       http.Header
		close         bool
		informational []int
	}
	get := func(path, method string) seen {
		c, br := r.dial()
		send(t, c, method+" "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		var s seen
		req := &http.Request{Method: method}
		res, err := http.ReadResponse(br, req)
		for err == nil && res.StatusCode < 200 {
			s.informational = append(s.informational, res.StatusCode)
			res, err = http.ReadResponse(br, req)
		}
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		res.Header.Del("Date")
		res.Header.Del("X-Via")
		if len(b) > 40 {
			b = append(b[:40:40], fmt.Sprintf("…(%d bytes)", len(b))...)
		}
		s.status, s.header, s.te, s.length, s.body, s.trailer, s.close = res.StatusCode, res.Header, res.TransferEncoding, res.ContentLength, string(b), res.Trailer, res.Close
		return s
	}
	for name := range cases {
		for _, method := range []string{"GET", "HEAD"} {
			loop, nethttp := get("/fast/"+name, method), get("/slow/"+name, method)
			if fmt.Sprint(loop) != fmt.Sprint(nethttp) {
				t.Errorf("%s %s:\nloop     %+v\nnet/http %+v", method, name, loop, nethttp)
			}
		}
	}
}

// Shutdown before Serve: Serve returns at once and closes its listener.
func TestShutdownBeforeServe(t *testing.T) {
	s := &Server{Handler: http.NotFoundHandler(), Fast: func(*http.Request) bool { return true }, Fallback: &http.Server{}}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the listener is still open: %v", err)
	}
}
