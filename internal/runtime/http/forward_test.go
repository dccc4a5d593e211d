package httprt

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// testMark is the header the test app counts connections by (see conns).
const testMark = "X-Stoke-Test"

// marked marks r as one of the test's own requests and returns it.
func marked(r *http.Request) *http.Request {
	r.Header.Set(testMark, "1")
	return r
}

// invoke runs one request straight through Invoke.
func invoke(t *testing.T, inst *Instance, method, target string, body io.Reader) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	req := marked(httptest.NewRequest(method, target, body))
	if err := inst.Invoke(rec, req); err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return rec
}

// conns is how many connections the app has had the test's requests on.
func conns(t *testing.T, inst *Instance) string {
	t.Helper()
	return invoke(t, inst, "GET", "/conns", nil).Body.String()
}

func idleConns(inst *Instance) int {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return len(inst.idle)
}

func TestProbeConnectionIsTheOnlyOne(t *testing.T) {
	checkNoLeaks(t)
	for _, proto := range []string{"http", "tcp"} {
		f := function(t, "hello")
		f.Readiness.Protocol = proto
		inst := start(t, f)
		for range 5 {
			if rec := invoke(t, inst, "GET", "/", nil); rec.Body.String() != "hello" {
				t.Fatalf("%s: got %q", proto, rec.Body)
			}
		}
		if n := conns(t, inst); n != "1" {
			t.Errorf("%s readiness: the app accepted %s connections, want the probe's only", proto, n)
		}
	}
}

// waitAppClosed waits until the app has closed the instance's kept
// connection: the close (FIN) is readable on it.
func waitAppClosed(t *testing.T, inst *Instance) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		inst.mu.Lock()
		closed := len(inst.idle) == 1 && inst.idle[0].peerClosed()
		inst.mu.Unlock()
		if closed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the app never closed the kept connection")
		}
	}
}

func TestRetryWhenAppClosedKeptConnection(t *testing.T) {
	checkNoLeaks(t)
	inst := start(t, function(t, "hello"))
	// No peek before reuse: the closed connection is found by the request.
	defer func(d time.Duration) { idleCheckAfter = d }(idleCheckAfter)
	idleCheckAfter = time.Hour
	if rec := invoke(t, inst, "GET", "/hangup", nil); rec.Body.String() != "hangup" {
		t.Fatalf("got %q", rec.Body)
	}
	waitAppClosed(t, inst)
	if rec := invoke(t, inst, "GET", "/", nil); rec.Body.String() != "hello" {
		t.Fatalf("after the app hung up: %d %q", rec.Code, rec.Body)
	}
	if n := conns(t, inst); n != "2" {
		t.Errorf("app accepted %s connections, want 2", n)
	}
	// A POST may have been served before the connection broke: not retried.
	invoke(t, inst, "GET", "/hangup", nil)
	waitAppClosed(t, inst)
	err := inst.Invoke(httptest.NewRecorder(), marked(httptest.NewRequest("POST", "/echo", strings.NewReader("x"))))
	if err == nil {
		t.Fatal("POST on a connection the app closed was retried")
	}
}

func TestIdleConnectionClosedByAppIsNotUsed(t *testing.T) {
	checkNoLeaks(t)
	inst := start(t, function(t, "idle")) // closes connections idle for 300 ms
	waitAppClosed(t, inst)
	// A POST is not retried, so this only works if the closed connection
	// was noticed before the request was sent on it.
	rec := invoke(t, inst, "POST", "/echo", strings.NewReader("payload"))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"body":"payload"`) {
		t.Fatalf("got %d %q", rec.Code, rec.Body)
	}
}

func TestConnectionClose(t *testing.T) {
	checkNoLeaks(t)
	inst := start(t, function(t, "hello"))
	rec := invoke(t, inst, "GET", "/close", nil)
	if rec.Body.String() != "bye" || rec.Header().Get("Connection") != "" {
		t.Fatalf("got %q, header %v", rec.Body, rec.Header())
	}
	if n := idleConns(inst); n != 0 {
		t.Fatalf("kept %d connections after Connection: close", n)
	}
	if n := conns(t, inst); n != "2" {
		t.Errorf("app accepted %s connections, want 2", n)
	}
}

func TestResponseUntilEOF(t *testing.T) {
	checkNoLeaks(t)
	inst := start(t, function(t, "hello"))
	rec := invoke(t, inst, "GET", "/eof", nil)
	if rec.Code != 200 || rec.Body.String() != "until the end" {
		t.Fatalf("got %d %q", rec.Code, rec.Body)
	}
	if n := idleConns(inst); n != 0 {
		t.Fatalf("kept %d connections after a body delimited by close", n)
	}
	// A writer that cannot flush (the Invoke API's) gets the streamed body too.
	var b bytes.Buffer
	w := &pipeWriter{h: http.Header{}, w: &b}
	if err := inst.Invoke(struct{ http.ResponseWriter }{w}, marked(httptest.NewRequest("GET", "/eof", nil))); err != nil || b.String() != "until the end" {
		t.Fatalf("without Flush: %q, %v", b.String(), err)
	}
}

func TestNoBodyResponses(t *testing.T) {
	checkNoLeaks(t)
	inst := start(t, function(t, "hello"))
	srv := front(t, inst)
	for _, c := range []struct {
		method, path string
		code         int
		length       int64
	}{
		{"HEAD", "/big?n=1000", 200, 1000},
		{"GET", "/status?code=204", 204, -1},
		{"GET", "/status?code=304", 304, -1},
		{"GET", "/early", 200, 11}, // a 103 first, then the answer
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		want := ""
		if c.path == "/early" {
			want = "after hints"
		}
		if res.StatusCode != c.code || string(b) != want || (c.length >= 0 && res.ContentLength != c.length) {
			t.Errorf("%s %s: %d, length %d, %q", c.method, c.path, res.StatusCode, res.ContentLength, b)
		}
	}
	// Every one of those left the one connection reusable.
	if n := conns(t, inst); n != "1" {
		t.Errorf("app accepted %s connections, want 1", n)
	}
}

// onlyReader hides bytes.Reader's type, so the client cannot know the
// length and sends the body chunked.
type onlyReader struct{ io.Reader }

func TestChunkedRequestBody(t *testing.T) {
	checkNoLeaks(t)
	inst := start(t, function(t, "hello"))
	srv := front(t, inst)
	for _, size := range []int{10, 3 << 20} {
		in := make([]byte, size)
		rand.Read(in)
		req, _ := http.NewRequest("POST", srv.URL+"/copy", onlyReader{bytes.NewReader(in)})
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || !bytes.Equal(in, out) {
			t.Fatalf("%d bytes chunked: %d back, err %v", size, len(out), err)
		}
	}
	if n := conns(t, inst); n != "1" {
		t.Errorf("app accepted %s connections, want 1", n)
	}
}

// An echo larger than both socket buffers only completes if the body is
// written while the response is read.
func TestLargeEchoFullDuplex(t *testing.T) {
	checkNoLeaks(t)
	inst := start(t, function(t, "hello"))
	in := make([]byte, 64<<20)
	rand.Read(in)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := httptest.NewRecorder()
	err := inst.Invoke(rec, marked(httptest.NewRequest("POST", "/copy", bytes.NewReader(in)).WithContext(ctx)))
	if err != nil || !bytes.Equal(rec.Body.Bytes(), in) {
		t.Fatalf("64 MB echo: %d bytes back, err %v", rec.Body.Len(), err)
	}
}

func TestMaxBytesErrorSurfaces(t *testing.T) {
	checkNoLeaks(t)
	inst := start(t, function(t, "hello"))
	for _, c := range []struct {
		name string
		body io.Reader
	}{
		{"known length", bytes.NewReader(make([]byte, 2000))},
		{"chunked", onlyReader{bytes.NewReader(make([]byte, 200<<10))}},
	} {
		rec := httptest.NewRecorder()
		// /echo reads the whole body before it answers, so the limit is hit
		// before any response; an app that answers while it reads (/copy)
		// may start its response first, and then the error is an abort.
		req := marked(httptest.NewRequest("POST", "/echo", c.body))
		req.Body = http.MaxBytesReader(rec, req.Body, 1000)
		err := inst.Invoke(rec, req)
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) || mbe.Limit != 1000 || errors.Is(err, http.ErrAbortHandler) {
			t.Errorf("%s: got %v, want a *http.MaxBytesError", c.name, err)
		}
		if rec.Body.Len() != 0 || len(rec.Header()) != 0 {
			t.Errorf("%s: Invoke wrote %v %q", c.name, rec.Header(), rec.Body)
		}
	}
	invoke(t, inst, "GET", "/", nil) // the instance still serves
}

func TestCancelMidResponse(t *testing.T) {
	checkNoLeaks(t)
	inst := start(t, function(t, "hello"))
	invoke(t, inst, "GET", "/", nil)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	w := &pipeWriter{h: http.Header{}, w: pw}
	errc := make(chan error, 1)
	go func() {
		errc <- inst.Invoke(w, marked(httptest.NewRequest("GET", "/stream", nil).WithContext(ctx)))
		pw.Close()
	}()
	if line, _ := bufio.NewReader(pr).ReadString('\n'); line != "first\n" {
		t.Fatalf("first line %q", line)
	}
	cancel()
	go io.Copy(io.Discard, pr)
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) || !errors.Is(err, http.ErrAbortHandler) {
			t.Fatalf("got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Invoke did not return after its context was cancelled")
	}
	if n := idleConns(inst); n != 0 {
		t.Fatalf("kept the interrupted connection (%d idle)", n)
	}
	if n := conns(t, inst); n != "2" {
		t.Errorf("app accepted %s connections, want 2 (the interrupted one dropped)", n)
	}
	for deadline := time.Now().Add(2 * time.Second); runtime.NumGoroutine() > before; {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines before, %d after", before, runtime.NumGoroutine())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pipeWriter is a ResponseWriter whose body goes to a pipe, flushed or not.
type pipeWriter struct {
	h http.Header
	w io.Writer
}

func (p *pipeWriter) Header() http.Header         { return p.h }
func (p *pipeWriter) WriteHeader(int)             {}
func (p *pipeWriter) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipeWriter) Flush()                      {}

func TestUpgradeTunnels(t *testing.T) {
	checkNoLeaks(t)
	inst := start(t, function(t, "hello"))
	srv := front(t, inst)
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 101 {
		t.Fatalf("got %v %v", res, err)
	}
	io.WriteString(c, "ping")
	b := make([]byte, 4)
	if _, err := io.ReadFull(br, b); err != nil || string(b) != "ping" {
		t.Fatalf("echo %q %v", b, err)
	}
}
