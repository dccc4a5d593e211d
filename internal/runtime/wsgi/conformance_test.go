package wsgirt

// PEP 3333 conformance of the python-wsgi runtime, through the real shim and
// real Python, for both kinds of instance: forked from the template
// (snapshot: true) and plain (snapshot: false). Each mode starts one
// instance and runs every case on it in turn, so the cases also check that
// the shim and Stoke stay in step from one request to the next, whatever
// the previous one did (an unread body, an error, a broken-off response).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/runtime/httpwire"
)

// confModes are the two ways an instance comes to be.
var confModes = []struct {
	name     string
	snapshot bool
}{{"forked", true}, {"plain", false}}

// conf is one mode's shared instance.
type conf struct {
	rt *Runtime
	in runtime.Instance
	id string
	l  *logs
	n  int // instances started by fresh
}

// fresh starts another instance, for a case that may leave its instance
// unusable.
func (c *conf) fresh(t *testing.T) runtime.Instance {
	c.n++
	return start(t, c.rt, fmt.Sprintf("%s-%d", c.id, c.n))
}

// decodeJSON is decode with a short failure message.
func decodeJSON(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("%d %.200q: %v", w.Code, w.Body, err)
	}
	return m
}

func TestConformance(t *testing.T) {
	for _, m := range confModes {
		t.Run(m.name, func(t *testing.T) {
			l := &logs{}
			rt := newRuntime(t, testFunction(t, "app:app", m.snapshot), l)
			c := &conf{rt: rt, id: "conf-" + m.name, l: l}
			c.in = start(t, rt, c.id)
			t.Run("Environ", c.environ)
			t.Run("RequestBody", c.requestBody)
			t.Run("Response", c.response)
			t.Run("ResponseOverHTTP", c.overHTTP)
			t.Run("Errors", c.errorCases)
			t.Run("Validator", c.validator)
			t.Run("Sequential", c.sequential)
			t.Run("Logging", c.logging)
			t.Run("Exit", c.exit)
			t.Run("KilledWhileIdle", c.killedWhileIdle)
			if s := l.String(); strings.Contains(s, "garbage collected without being closed") {
				t.Errorf("an iterable was not closed:\n%s", s)
			}
		})
	}
}

// do runs req on the shared instance.
func (c *conf) do(req *http.Request) (*httptest.ResponseRecorder, error) {
	w := httptest.NewRecorder()
	return w, c.in.Invoke(w, req)
}

// ok runs req and fails the test if Invoke fails.
func (c *conf) ok(t *testing.T, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	w, err := c.do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return w
}

// stillServes checks the instance answers a plain request correctly: the
// protocol is in step after whatever came before.
func (c *conf) stillServes(t *testing.T) {
	t.Helper()
	stillServes(t, c.in)
}

func stillServes(t *testing.T, in runtime.Instance) {
	t.Helper()
	if err := inStep(in); err != nil {
		t.Fatal(err)
	}
}

// inStep says whether in answers a request as it should.
func inStep(in runtime.Instance) error {
	const body = "still in step"
	w := httptest.NewRecorder()
	if err := in.Invoke(w, httptest.NewRequest("POST", "/echo?after=1", strings.NewReader(body))); err != nil {
		return fmt.Errorf("the next request: %w", err)
	}
	var env map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil ||
		env["QUERY_STRING"] != "after=1" || env["body_len"] != float64(len(body)) || w.Code != 200 {
		return fmt.Errorf("the next request got %d %.200q", w.Code, w.Body)
	}
	return nil
}

// hiddenLen hides a reader's length, so httptest.NewRequest leaves
// ContentLength at -1, as for a chunked request.
type hiddenLen struct{ r io.Reader }

func (h hiddenLen) Read(p []byte) (int, error) { return h.r.Read(p) }

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// randomBytes is n deterministic pseudo-random bytes.
func randomBytes(n int) []byte {
	r := mrand.New(mrand.NewPCG(uint64(n), 3333))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func (c *conf) environ(t *testing.T) {
	// absent marks a key the environ must not have.
	type absentT struct{}
	absent := absentT{}
	// base is what every request from httptest.NewRequest has.
	base := map[string]any{
		"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/echo", "QUERY_STRING": "",
		"SERVER_NAME": "example.com", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
		"REMOTE_ADDR": "192.0.2.1", "REMOTE_PORT": "1234", "HTTP_HOST": "example.com",
		"HTTP_X_FORWARDED_FOR": "192.0.2.1", "HTTP_X_FORWARDED_PROTO": "http",
		"wsgi.url_scheme": "http", "wsgi.version": []any{1.0, 0.0},
		"wsgi.multithread": false, "wsgi.multiprocess": true, "wsgi.run_once": false,
		"wsgi.input_terminated": true, "nonstr_keys": []any{}, "check_environ": "ok",
		"HTTP_CONTENT_TYPE": absent, "HTTP_CONTENT_LENGTH": absent, "CONTENT_TYPE": absent,
		"body_len": 0.0,
	}
	cases := []struct {
		name string
		req  func() *http.Request
		want map[string]any // on top of base
	}{
		{"GET", func() *http.Request { return httptest.NewRequest("GET", "/echo", nil) }, nil},
		{"POST with a body and a content type",
			func() *http.Request {
				r := httptest.NewRequest("POST", "/echo", strings.NewReader(`{"a":1}`))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Content-Length", "7")
				return r
			},
			map[string]any{"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "7", "body_len": 7.0}},
		{"PUT", func() *http.Request { return httptest.NewRequest("PUT", "/echo", strings.NewReader("x")) },
			map[string]any{"REQUEST_METHOD": "PUT", "CONTENT_LENGTH": "1", "body_len": 1.0}},
		{"DELETE", func() *http.Request { return httptest.NewRequest("DELETE", "/echo", nil) },
			map[string]any{"REQUEST_METHOD": "DELETE"}},
		{"OPTIONS", func() *http.Request { return httptest.NewRequest("OPTIONS", "/echo", nil) },
			map[string]any{"REQUEST_METHOD": "OPTIONS"}},
		{"extension method", func() *http.Request { return httptest.NewRequest("PROPFIND", "/echo", nil) },
			map[string]any{"REQUEST_METHOD": "PROPFIND"}},
		{"percent-decoded path", func() *http.Request { return httptest.NewRequest("GET", "/echo/a%20b%2Fc%25d", nil) },
			map[string]any{"PATH_INFO": "/echo/a b/c%d"}},
		// PEP 3333: PATH_INFO holds the path's bytes decoded as latin-1.
		{"UTF-8 path, escaped", func() *http.Request { return httptest.NewRequest("GET", "/echo/caf%C3%A9", nil) },
			map[string]any{"PATH_INFO": "/echo/caf\u00c3\u00a9"}},
		{"UTF-8 path, raw", func() *http.Request { return httptest.NewRequest("GET", "/echo/café", nil) },
			map[string]any{"PATH_INFO": "/echo/caf\u00c3\u00a9"}},
		{"latin-1 byte in the path", func() *http.Request { return httptest.NewRequest("GET", "/echo/caf%E9", nil) },
			map[string]any{"PATH_INFO": "/echo/caf\u00e9"}},
		{"query string raw", func() *http.Request {
			return httptest.NewRequest("GET", "/echo?a=1&b=%20x+y&c=%C3%A9&d&e=a%2Fb", nil)
		}, map[string]any{"QUERY_STRING": "a=1&b=%20x+y&c=%C3%A9&d&e=a%2Fb"}},
		{"empty query", func() *http.Request { return httptest.NewRequest("GET", "/echo?", nil) }, nil},
		{"host with port", func() *http.Request { return httptest.NewRequest("GET", "http://example.org:8080/echo", nil) },
			map[string]any{"SERVER_NAME": "example.org", "SERVER_PORT": "8080", "HTTP_HOST": "example.org:8080"}},
		{"IPv6 host", func() *http.Request {
			r := httptest.NewRequest("GET", "/echo", nil)
			r.Host = "[2001:db8::1]:8443"
			return r
		}, map[string]any{"SERVER_NAME": "[2001:db8::1]", "SERVER_PORT": "8443", "HTTP_HOST": "[2001:db8::1]:8443"}},
		{"IPv6 host without port", func() *http.Request {
			r := httptest.NewRequest("GET", "/echo", nil)
			r.Host = "[2001:db8::1]"
			return r
		}, map[string]any{"SERVER_NAME": "[2001:db8::1]", "SERVER_PORT": "80", "HTTP_HOST": "[2001:db8::1]"}},
		{"https", func() *http.Request { return httptest.NewRequest("GET", "https://secure.example/echo", nil) },
			map[string]any{"wsgi.url_scheme": "https", "SERVER_NAME": "secure.example", "SERVER_PORT": "443",
				"HTTP_HOST": "secure.example", "HTTP_X_FORWARDED_PROTO": "https"}},
		{"HTTP/2", func() *http.Request {
			r := httptest.NewRequest("GET", "/echo", nil)
			r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
			return r
		}, map[string]any{"SERVER_PROTOCOL": "HTTP/2.0"}},
		{"IPv6 client", func() *http.Request {
			r := httptest.NewRequest("GET", "/echo", nil)
			r.RemoteAddr = "[2001:db8::2]:5555"
			return r
		}, map[string]any{"REMOTE_ADDR": "2001:db8::2", "REMOTE_PORT": "5555", "HTTP_X_FORWARDED_FOR": "2001:db8::2"}},
		{"headers", func() *http.Request {
			r := httptest.NewRequest("GET", "/echo", nil)
			r.Header.Add("X-Rep", "a")
			r.Header.Add("X-Rep", "b")
			r.Header.Add("X-Rep", "c d")
			r.Header.Set("User-Agent", "conformance/1")
			r.Header.Set("Accept-Language", "fr-CH, fr;q=0.9")
			r.Header.Set("X-Many-Dashed-Words", "v")
			r.Header.Set("Cookie", "a=1; b=2")
			r.Header.Set("Authorization", "Bearer t")
			return r
		}, map[string]any{"HTTP_X_REP": "a,b,c d", "HTTP_USER_AGENT": "conformance/1",
			"HTTP_ACCEPT_LANGUAGE": "fr-CH, fr;q=0.9", "HTTP_X_MANY_DASHED_WORDS": "v",
			"HTTP_COOKIE": "a=1; b=2", "HTTP_AUTHORIZATION": "Bearer t"}},
		{"hop-by-hop headers dropped", func() *http.Request {
			r := httptest.NewRequest("GET", "/echo", nil)
			r.Header.Set("Connection", "keep-alive")
			r.Header.Set("Keep-Alive", "timeout=5")
			r.Header.Set("Te", "trailers")
			r.Header.Set("Upgrade", "h2c")
			return r
		}, map[string]any{"HTTP_CONNECTION": absent, "HTTP_KEEP_ALIVE": absent, "HTTP_TE": absent, "HTTP_UPGRADE": absent}},
		{"the client's Content-Length header is not the body's length", func() *http.Request {
			r := httptest.NewRequest("POST", "/echo", strings.NewReader("abc"))
			r.Header.Set("Content-Length", "999")
			return r
		}, map[string]any{"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "3", "body_len": 3.0}},
	}
	// Each request is as the gateway hands it over: its forwarded fields
	// set by the gateway's policy, which the runtime passes on.
	gateway := httpwire.NewForwarding(nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.req()
			gateway.Apply(r)
			w := c.ok(t, r)
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			env := decodeJSON(t, w)
			want := map[string]any{}
			for k, v := range base {
				want[k] = v
			}
			for k, v := range tc.want {
				want[k] = v
			}
			for k, v := range want {
				got, ok := env[k]
				switch {
				case v == absent && ok:
					t.Errorf("%s = %#v, want it absent", k, got)
				case v != absent && !ok:
					t.Errorf("%s missing, want %#v", k, v)
				case v != absent && !reflect.DeepEqual(got, v):
					t.Errorf("%s = %#v, want %#v", k, got, v)
				}
			}
			// No length: absent, empty or 0 (PEP 3333).
			if _, set := want["CONTENT_LENGTH"]; !set {
				if cl, ok := env["CONTENT_LENGTH"]; ok && cl != "" && cl != "0" {
					t.Errorf("CONTENT_LENGTH = %#v without a body", cl)
				}
			}
			if t.Failed() {
				t.Logf("environ: %v", env)
			}
		})
	}

	// A client's own forwarded claims are replaced by the gateway's policy
	// (httpwire.Forwarding), and the runtime passes the result on as it is.
	t.Run("X-Forwarded-* from the client", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/echo", nil)
		r.Header.Set("X-Forwarded-For", "10.0.0.1")
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("Forwarded", "for=10.0.0.1;proto=https")
		gateway.Apply(r)
		env := decodeJSON(t, c.ok(t, r))
		if env["HTTP_X_FORWARDED_FOR"] != "192.0.2.1" || env["HTTP_X_FORWARDED_PROTO"] != "http" ||
			env["HTTP_FORWARDED"] != "for=192.0.2.1;host=example.com;proto=http" {
			t.Errorf("X-Forwarded-For %v, X-Forwarded-Proto %v", env["HTTP_X_FORWARDED_FOR"], env["HTTP_X_FORWARDED_PROTO"])
		}
	})

	// A header spelled with underscores must not pass for (or merge with)
	// the dashed one in the environ: HTTP_X_USER would be ambiguous. Like
	// gunicorn, waitress and nginx, the shim drops such headers.
	t.Run("underscore headers dropped", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/echo", nil)
		r.Header["X-User"] = []string{"real"}
		r.Header["X_user"] = []string{"spoofed"}
		r.Header["X_forwarded_for"] = []string{"6.6.6.6"}
		gateway.Apply(r)
		env := decodeJSON(t, c.ok(t, r))
		if env["HTTP_X_USER"] != "real" || env["HTTP_X_FORWARDED_FOR"] != "192.0.2.1" {
			t.Errorf("HTTP_X_USER = %#v, HTTP_X_FORWARDED_FOR = %#v", env["HTTP_X_USER"], env["HTTP_X_FORWARDED_FOR"])
		}
	})
}

func (c *conf) requestBody(t *testing.T) {
	big := randomBytes(8 << 20)
	oneMB := randomBytes(1 << 20)
	cases := []struct {
		name    string
		req     func() *http.Request
		body    []byte
		length  string // CONTENT_LENGTH; "" for absent or empty
		anyZero bool   // CONTENT_LENGTH may be absent, "" or "0"
	}{
		{"none", func() *http.Request { return httptest.NewRequest("POST", "/echo", nil) }, nil, "", true},
		{"http.NoBody", func() *http.Request { return httptest.NewRequest("POST", "/echo", http.NoBody) }, nil, "", true},
		{"empty reader", func() *http.Request { return httptest.NewRequest("POST", "/echo", bytes.NewReader(nil)) }, nil, "", true},
		{"small", func() *http.Request { return httptest.NewRequest("POST", "/echo", strings.NewReader("hello")) }, []byte("hello"), "5", false},
		{"binary", func() *http.Request {
			return httptest.NewRequest("POST", "/echo", bytes.NewReader([]byte{0, 1, 2, 0xff, '\n', '\r', 0}))
		}, []byte{0, 1, 2, 0xff, '\n', '\r', 0}, "7", false},
		{"8 MB", func() *http.Request { return httptest.NewRequest("POST", "/echo", bytes.NewReader(big)) }, big, strconv.Itoa(len(big)), false},
		{"chunked (unknown length)", func() *http.Request {
			r := httptest.NewRequest("POST", "/echo", hiddenLen{bytes.NewReader(oneMB)})
			if r.ContentLength != -1 {
				panic("ContentLength " + strconv.FormatInt(r.ContentLength, 10))
			}
			return r
		}, oneMB, "", false},
		{"chunked 8 MB", func() *http.Request {
			return httptest.NewRequest("POST", "/echo", hiddenLen{bytes.NewReader(big)})
		}, big, "", false},
		{"chunked, empty", func() *http.Request {
			return httptest.NewRequest("POST", "/echo", hiddenLen{bytes.NewReader(nil)})
		}, nil, "", false},
		// A Body with ContentLength 0 is of unknown length to head().
		{"ContentLength 0 with a body", func() *http.Request {
			r := httptest.NewRequest("POST", "/echo", nil)
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader("surprise")), 0
			return r
		}, []byte("surprise"), "", false},
		{"one byte at a time", func() *http.Request {
			return httptest.NewRequest("POST", "/echo", hiddenLen{io.LimitReader(&oneByte{b: oneMB[:300]}, 300)})
		}, oneMB[:300], "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := decodeJSON(t, c.ok(t, tc.req()))
			if env["body_len"] != float64(len(tc.body)) || env["body_sha256"] != sha(tc.body) {
				t.Errorf("the app read %v bytes, sha256 %v; want %d, %s", env["body_len"], env["body_sha256"], len(tc.body), sha(tc.body))
			}
			cl, ok := env["CONTENT_LENGTH"]
			switch {
			case tc.anyZero:
				if ok && cl != "" && cl != "0" {
					t.Errorf("CONTENT_LENGTH = %#v, want absent, empty or 0", cl)
				}
			case tc.length == "":
				if ok && cl != "" {
					t.Errorf("CONTENT_LENGTH = %#v, want absent or empty (unknown length)", cl)
				}
			case cl != tc.length:
				t.Errorf("CONTENT_LENGTH = %#v, want %q", cl, tc.length)
			}
			if env["wsgi.input_terminated"] != true {
				t.Errorf("wsgi.input_terminated = %v", env["wsgi.input_terminated"])
			}
		})
	}

	t.Run("lines by iteration", func(t *testing.T) {
		for _, tc := range []struct{ body, want string }{
			{"", "0 "},
			{"one", "1 one"},
			{"a\nb\nc", "3 c"},
			{"a\nb\nc\n", "3 c\n"},
			{"\n\n\n", "3 \n"},
			{strings.Repeat("line of text\n", 100000) + "last", "100001 last"},
		} {
			w := c.ok(t, httptest.NewRequest("POST", "/lines", strings.NewReader(tc.body)))
			if got := w.Body.String(); got != tc.want {
				t.Errorf("body of %d bytes: %q, want %q", len(tc.body), got, tc.want)
			}
		}
	})

	t.Run("readline readlines read", func(t *testing.T) {
		// The body in 64 KiB frames would not split these; one byte at a
		// time makes every frame boundary fall inside a line.
		body := "first line\nsecond\nthird\nfourth\nrest without newline"
		for _, r := range []io.Reader{strings.NewReader(body), hiddenLen{&oneByte{b: []byte(body)}}} {
			got := decodeJSON(t, c.ok(t, httptest.NewRequest("POST", "/readlines", r)))
			want := map[string]any{
				"readline4": "firs", "readline": "t line\n", "read3": "sec",
				"readlines": []any{"ond\n", "third\n", "fourth\n", "rest without newline"},
				"after":     "", "readline_at_eof": "",
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %v\nwant %v", got, want)
			}
		}
	})

	t.Run("unread body", func(t *testing.T) {
		for _, n := range []int{1, 100 << 10, 4 << 20} {
			w := c.ok(t, httptest.NewRequest("POST", "/noread", bytes.NewReader(big[:n])))
			if w.Body.String() != "ignored the body" {
				t.Fatalf("%d bytes: %q", n, w.Body)
			}
			c.stillServes(t)
			w = c.ok(t, httptest.NewRequest("POST", "/noread", hiddenLen{bytes.NewReader(big[:n])}))
			if w.Body.String() != "ignored the body" {
				t.Fatalf("%d bytes, chunked: %q", n, w.Body)
			}
			c.stillServes(t)
		}
	})

	t.Run("partly read body", func(t *testing.T) {
		for _, n := range []int{0, 10, 70000} {
			w := c.ok(t, httptest.NewRequest("POST", "/read-some?n="+strconv.Itoa(n), bytes.NewReader(oneMB)))
			if !bytes.Equal(w.Body.Bytes(), oneMB[:n]) {
				t.Fatalf("read(%d) gave %d bytes, not the body's first", n, w.Body.Len())
			}
			c.stillServes(t)
		}
	})
}

// oneByte reads b one byte per Read.
type oneByte struct{ b []byte }

func (o *oneByte) Read(p []byte) (int, error) {
	if len(o.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0], o.b = o.b[0], o.b[1:]
	return 1, nil
}

func (c *conf) response(t *testing.T) {
	appFile, err := os.ReadFile("testdata/app.py")
	if err != nil {
		t.Fatal(err)
	}
	var stream strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&stream, "chunk %d\n", i)
	}
	cases := []struct {
		name, target string
		status       int
		body         string
		header       http.Header // want these values exactly
		noHeader     []string
		streamed     bool // no Content-Length; flushed as it came
	}{
		{name: "status and headers", target: "/echo", status: 200,
			header: http.Header{"Content-Type": {"application/json"}, "X-Multi": {"a", "b"}}},
		{name: "repeated headers", target: "/headers", status: 200, body: "headers",
			header: http.Header{"X-Multi": {"a", "b"}, "Set-Cookie": {"a=1; Path=/", "b=2; Path=/"}, "X-Lower-Case": {"kept"}}},
		{name: "write()", target: "/write", status: 201, body: "written and returned", streamed: true},
		{name: "generator", target: "/stream?n=1000", status: 200, body: stream.String(), streamed: true},
		{name: "empty strings in the iterable", target: "/chunks", status: 200, body: "ab"},
		{name: "empty iterable", target: "/empty", status: 200, body: "", header: http.Header{"X-Empty": {"yes"}}},
		{name: "close()", target: "/close", status: 200, body: "closing"},
		{name: "wsgi.file_wrapper", target: "/file", status: 200, body: string(appFile),
			header: http.Header{"Content-Type": {"text/x-python"}}},
		{name: "404", target: "/nowhere", status: 404, body: "path /nowhere"},
		{name: "unusual status", target: "/status?code=299&body=x", status: 299, body: "x", header: http.Header{"X-Code": {"299"}}},
		{name: "202 without a body", target: "/status?code=202", status: 202, body: ""},
		{name: "5xx from the app", target: "/status?code=503&body=down", status: 503, body: "down"},
		{name: "exc_info replaces the head", target: "/exc-info", status: 500, body: "handled", noHeader: []string{"X-Dropped"}},
		{name: "hop-by-hop response headers dropped", target: "/headers", status: 200, body: "headers",
			noHeader: []string{"Connection", "Keep-Alive"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := c.ok(t, httptest.NewRequest("GET", tc.target, nil))
			if w.Code != tc.status {
				t.Errorf("status %d, want %d", w.Code, tc.status)
			}
			if tc.body != "" || tc.target != "/echo" {
				if got := w.Body.String(); got != tc.body {
					t.Errorf("body %d bytes %.80q, want %d bytes %.80q", len(got), got, len(tc.body), tc.body)
				}
			}
			for k, v := range tc.header {
				if got := w.Header()[k]; !reflect.DeepEqual(got, v) {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			for _, k := range tc.noHeader {
				if v, ok := w.Header()[k]; ok {
					t.Errorf("%s: %q, want none", k, v)
				}
			}
			if tc.streamed {
				if cl := w.Header().Get("Content-Length"); cl != "" {
					t.Errorf("Content-Length %s on a streamed response", cl)
				}
				if !w.Flushed {
					t.Errorf("a streamed response was not flushed")
				}
			}
		})
	}

	t.Run("close() logged", func(t *testing.T) {
		c.l.waitFor(t, c.id+" stdout: close() called")
	})

	t.Run("20 MB", func(t *testing.T) {
		const n = 20000000
		w := c.ok(t, httptest.NewRequest("GET", "/big?n="+strconv.Itoa(n), nil))
		if w.Body.Len() != n || bytes.Count(w.Body.Bytes(), []byte("x")) != n {
			t.Errorf("%d bytes, want %d x", w.Body.Len(), n)
		}
		if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(n) {
			t.Errorf("Content-Length %q", cl)
		}
	})

	// PEP 3333: header values are str holding latin-1; on the wire they are
	// those bytes.
	t.Run("latin-1 header value", func(t *testing.T) {
		w := c.ok(t, httptest.NewRequest("GET", "/headers", nil))
		got := w.Header().Get("X-Latin1")
		if got != "caf\xe9" {
			t.Errorf("X-Latin1: %q, want %q", got, "caf\xe9")
		}
	})
}

// overHTTP runs responses through a real net/http server, which (unlike a
// ResponseRecorder) drops bodies HTTP does not allow: HEAD, 204 and 304.
// The handler does what the gateway does with Invoke's error.
func (c *conf) overHTTP(t *testing.T) {
	// The transport retries a HEAD or GET whose connection broke off, so
	// one request may reach the handler more than once: keep every error.
	var mu sync.Mutex
	var errs []error
	// The client has a HEAD's whole answer with its head, while the handler
	// is still reading the rest from the instance: the next request on the
	// instance waits for the handler, as the pool would.
	var inflight sync.WaitGroup
	srvIn := c.in // the instance the server uses
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		defer inflight.Done()
		mu.Lock()
		in := srvIn
		mu.Unlock()
		err := in.Invoke(w, r)
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
		if err != nil && errors.Is(err, http.ErrAbortHandler) {
			panic(http.ErrAbortHandler)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	}))
	srv.Start()
	defer srv.Close()
	cl := srv.Client()
	cases := []struct {
		method, target string
		status         int
		length         int64 // resp.ContentLength
		header         http.Header
		fresh          bool // on an instance of its own: it may break it
	}{
		{"HEAD", "/big?n=1000", 200, 1000, nil, false},
		{"HEAD", "/stream?n=3", 200, -1, nil, false},
		{"HEAD", "/echo", 200, -1, http.Header{"X-Multi": {"a", "b"}}, false},
		{"GET", "/status?code=204", 204, 0, http.Header{"X-Code": {"204"}}, false},
		{"GET", "/status?code=304", 304, 0, http.Header{"X-Code": {"304"}}, false},
		{"GET", "/validated/empty", 204, 0, nil, false},
		// The app gives a body HTTP does not allow: net/http refuses to
		// write it (http.ErrBodyNotAllowed); it should be dropped, as
		// net/http drops a HEAD response's body.
		{"GET", "/status?code=204&body=not+allowed", 204, 0, nil, true},
		{"GET", "/status?code=304&body=not+allowed", 304, 0, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			in := c.in
			if tc.fresh {
				in = c.fresh(t)
			}
			mu.Lock()
			srvIn, errs = in, nil
			mu.Unlock()
			defer func() {
				mu.Lock()
				srvIn = c.in
				mu.Unlock()
			}()
			req, _ := http.NewRequest(tc.method, srv.URL+tc.target, nil)
			resp, err := cl.Do(req)
			var body []byte
			var rerr error
			if err == nil {
				body, rerr = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			inflight.Wait()
			mu.Lock()
			ierr := errors.Join(errs...)
			errs = nil
			mu.Unlock()
			if err != nil {
				t.Fatalf("%v (Invoke: %v)", err, ierr)
			}
			if err := rerr; err != nil || ierr != nil {
				t.Fatalf("read body: %v; Invoke: %v", err, ierr)
			}
			if resp.StatusCode != tc.status || len(body) != 0 {
				t.Errorf("%d with %d bytes, want %d without a body", resp.StatusCode, len(body), tc.status)
			}
			if tc.method == "HEAD" && tc.length >= 0 && resp.ContentLength != tc.length {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, tc.length)
			}
			for k, v := range tc.header {
				if got := resp.Header[k]; !reflect.DeepEqual(got, v) {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			// Whatever happened, the shim must be in step.
			stillServes(t, in)
		})
	}
}

func (c *conf) errorCases(t *testing.T) {
	cases := []struct {
		name, target string
		body         io.Reader
		errType      string
		msg          []string // in the error's message
		started      bool     // wrapped in http.ErrAbortHandler, the response begun
		partial      string   // what the client got before the error
		log          []string // lines in the instance's log
		fresh        bool     // on an instance of its own: it may break it
	}{
		{name: "raise before start_response", target: "/raise", errType: "Runtime.UnhandledError",
			msg: []string{"ValueError", "the app failed on purpose"},
			log: []string{"Traceback (most recent call last):", "ValueError: the app failed on purpose"}},
		{name: "raise with an unread body", target: "/raise", body: bytes.NewReader(randomBytes(3 << 20)),
			errType: "Runtime.UnhandledError", msg: []string{"ValueError"}},
		{name: "raise with an unread chunked body", target: "/raise", body: hiddenLen{bytes.NewReader(randomBytes(1 << 20))},
			errType: "Runtime.UnhandledError", msg: []string{"ValueError"}},
		{name: "raise mid-body", target: "/raise-late", errType: "Runtime.UnhandledError",
			msg: []string{"ValueError", "failed mid-body"}, started: true, partial: "partial",
			log: []string{"ValueError: failed mid-body"}},
		{name: "exc_info after the head went out", target: "/exc-info-late", errType: "Runtime.UnhandledError",
			msg: []string{"KeyError", "late"}, started: true, partial: "partial"},
		{name: "no start_response", target: "/no-start-response", errType: "Runtime.UnhandledError",
			msg: []string{"AssertionError", "start_response"}},
		{name: "str in the iterable", target: "/str-body", errType: "Runtime.UnhandledError",
			msg: []string{"TypeError"}},
		{name: "header value not latin-1", target: "/bad-header", errType: "Runtime.UnhandledError",
			msg: []string{"latin-1"}},
		{name: "status not a status line", target: "/status?code=99&body=x", errType: "Runtime.InvalidResponse",
			msg: []string{"99 Whatever"}, fresh: true},
		{name: "status not a status line, with a body to send", target: "/status?code=abc&body=x",
			body: strings.NewReader("a body"), errType: "Runtime.InvalidResponse", msg: []string{"abc"}, fresh: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := "GET"
			if tc.body != nil {
				method = "POST"
			}
			in := c.in
			if tc.fresh {
				in = c.fresh(t)
			}
			w := httptest.NewRecorder()
			err := in.Invoke(w, httptest.NewRequest(method, tc.target, tc.body))
			if err == nil {
				t.Fatalf("no error; %d %.200q", w.Code, w.Body)
			}
			if got := errors.Is(err, http.ErrAbortHandler); got != tc.started {
				t.Errorf("errors.Is(err, http.ErrAbortHandler) = %v, want %v: %v", got, tc.started, err)
			}
			var re *runtime.Error
			if !errors.As(err, &re) {
				t.Fatalf("%T %v, not a *runtime.Error", err, err)
			}
			if re.Type != tc.errType {
				t.Errorf("type %q, want %q: %v", re.Type, tc.errType, err)
			}
			for _, m := range tc.msg {
				if !strings.Contains(re.Message, m) {
					t.Errorf("message %q, want it to name %q", re.Message, m)
				}
			}
			if tc.started {
				if w.Body.String() != tc.partial {
					t.Errorf("the client got %q, want %q", w.Body, tc.partial)
				}
			} else if w.Body.Len() != 0 || len(w.Header()) != 0 {
				t.Errorf("the client got %v %q before the error", w.Header(), w.Body)
			}
			for _, line := range tc.log {
				c.l.waitFor(t, c.id+" stderr: "+line)
			}
			if err := inStep(in); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// validator runs a conforming app wrapped in wsgiref's validator, which
// raises AssertionError at anything the server does against PEP 3333.
func (c *conf) validator(t *testing.T) {
	appFile, err := os.ReadFile("testdata/app.py")
	if err != nil {
		t.Fatal(err)
	}
	body := randomBytes(300000)
	cases := []struct {
		method, target string
		body           []byte
		status         int
		want           []byte
	}{
		{"POST", "/validated/echo-body", body, 200, body},
		{"POST", "/validated/echo-body", nil, 200, nil},
		{"GET", "/validated/write", nil, 200, []byte("written and returned")},
		{"GET", "/validated/stream", nil, 200, []byte("01234")},
		{"GET", "/validated/file", nil, 200, appFile},
		{"GET", "/validated/empty", nil, 204, nil},
		{"GET", "/validated/nowhere", nil, 404, []byte("not found")},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			var r io.Reader
			if tc.body != nil {
				r = bytes.NewReader(tc.body)
			}
			w := c.ok(t, httptest.NewRequest(tc.method, tc.target, r))
			if w.Code != tc.status || !bytes.Equal(w.Body.Bytes(), tc.want) {
				t.Errorf("%d with %d bytes, want %d with %d", w.Code, w.Body.Len(), tc.status, len(tc.want))
			}
		})
	}
}

func (c *conf) sequential(t *testing.T) {
	paths := []string{"/echo", "/stream", "/write", "/noread", "/raise"}
	for i := range 200 {
		body := strings.Repeat("b", i*37)
		p := paths[i%len(paths)]
		w, err := c.do(httptest.NewRequest("POST", fmt.Sprintf("%s?n=%d", p, i%7), strings.NewReader(body)))
		if p == "/raise" {
			if err == nil || !strings.Contains(err.Error(), "ValueError") {
				t.Fatalf("request %d %s: %v", i, p, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("request %d %s: %v", i, p, err)
		}
		var want string
		switch p {
		case "/echo":
			env := decodeJSON(t, w)
			if env["QUERY_STRING"] != fmt.Sprintf("n=%d", i%7) || env["body_len"] != float64(len(body)) ||
				env["body_sha256"] != sha([]byte(body)) {
				t.Fatalf("request %d: %v", i, env)
			}
			continue
		case "/stream":
			for j := range i % 7 {
				want += fmt.Sprintf("chunk %d\n", j)
			}
		case "/write":
			want = "written and returned"
		case "/noread":
			want = "ignored the body"
		}
		if w.Body.String() != want {
			t.Fatalf("request %d %s: %q, want %q", i, p, w.Body, want)
		}
	}
}

func (c *conf) logging(t *testing.T) {
	w := c.ok(t, httptest.NewRequest("GET", "/log", nil))
	if w.Body.String() != "logged" {
		t.Errorf("body %q", w.Body)
	}
	c.l.waitFor(t, c.id+" stdout: hello from the app")
	c.l.waitFor(t, c.id+" stderr: to stderr")
}

// exit uses an instance of its own: the app ends its process mid-request.
func (c *conf) exit(t *testing.T) {
	id := c.id + "-exit"
	in := start(t, c.rt, id)
	w := httptest.NewRecorder()
	err := in.Invoke(w, httptest.NewRequest("GET", "/exit", nil))
	var re *runtime.Error
	if !errors.As(err, &re) || re.Type != "Runtime.ExitError" || !strings.Contains(re.Message, "exit status 3") {
		t.Fatalf("Invoke: %#v", err)
	}
	if errors.Is(err, http.ErrAbortHandler) {
		t.Errorf("nothing was sent, yet: %v", err)
	}
	select {
	case <-in.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done() did not close")
	}
	if e := in.Err(); e == nil || !strings.Contains(e.Error(), "exit status 3") {
		t.Errorf("Err() = %v", e)
	}
	// The next request never reaches it: not delivered, so the gateway
	// runs it on another instance.
	if err := in.Invoke(httptest.NewRecorder(), httptest.NewRequest("GET", "/echo", nil)); !notDelivered(err) {
		t.Errorf("Invoke after the exit: %#v, want *runtime.NotDelivered", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := in.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	// The shared instance is unaffected.
	c.stillServes(t)
}

// killedWhileIdle: an instance killed between requests, before Stoke saw
// it die, does not take the next request: the kernel refuses every byte of
// it, so it was never delivered and fails with nothing. Forked, the
// template is held stopped meanwhile, so the exit status (which it
// reports) cannot have arrived and the write itself must tell.
func (c *conf) killedWhileIdle(t *testing.T) {
	in := c.fresh(t)
	stillServes(t, in)
	if c.rt.tpl != nil {
		tpl := c.rt.tpl.proc.Pid()
		if err := syscall.Kill(tpl, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		resume := time.AfterFunc(1500*time.Millisecond, func() { _ = syscall.Kill(tpl, syscall.SIGCONT) })
		t.Cleanup(func() { resume.Stop(); _ = syscall.Kill(tpl, syscall.SIGCONT) })
	}
	pid := in.Pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Its files are closed once it is a zombie (or reaped).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if i := bytes.LastIndexByte(b, ')'); err != nil || (i > 0 && len(b) > i+2 && b[i+2] == 'Z') {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still running after SIGKILL: %s", pid, b)
		}
	}
	if c.rt.tpl != nil {
		select {
		case <-in.Done():
			t.Fatal("the fork's exit was known while its template was stopped")
		default:
		}
	}
	for _, req := range []*http.Request{
		httptest.NewRequest("POST", "/echo", strings.NewReader("a body")),
		httptest.NewRequest("GET", "/echo", nil),
	} {
		if err := in.Invoke(httptest.NewRecorder(), req); !notDelivered(err) {
			t.Errorf("%s to a killed instance: %#v, want *runtime.NotDelivered", req.Method, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = in.Stop(ctx)
	c.stillServes(t)
}

func notDelivered(err error) bool {
	_, ok := runtime.AsNotDelivered(err)
	return ok
}
