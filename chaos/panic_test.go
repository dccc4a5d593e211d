package chaos_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pyFn is a python-wsgi function serving testdata/wsgiapp.py (s.pyApp).
const pyFn = `  py:
    runtime: python-wsgi
    handler: wsgiapp:application
    python: /usr/bin/python3
    memory: 256
    timeout: 10s
    init_timeout: 1m
    routes: [/py/*]
`

// pyApp puts testdata/wsgiapp.py in the functions' directory.
func (s *stoke) pyApp() {
	s.t.Helper()
	b, err := os.ReadFile("testdata/wsgiapp.py")
	if err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "wsgiapp.py"), b, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// The panic → next request case for http and python-wsgi (lambda's is
// TestLambdaPanicThenEcho): the request that broke its app fails; the
// next is served.
func TestPanicThenNextRequest(t *testing.T) {
	s := newStoke(t, httpFn+pyFn)
	s.pyApp()
	s.start()
	for i := range 10 {
		// http: a panic that kills the process before it answers.
		if code, body, _ := s.get("/panic"); code != 502 || !strings.Contains(body, "Runtime.ExitError") {
			t.Errorf("round %d: http panic: %d %s", i, code, body)
		}
		if code, body, _ := s.get("/echo?round=" + string(rune('0'+i))); code != 200 || !strings.HasPrefix(body, "echo round=") {
			t.Errorf("round %d: http after a panic: %d %s", i, code, body)
		}
		// http: an app that answers whole and then dies; the next request
		// was never delivered to it, so it is served elsewhere.
		if code, body, _ := s.get("/answer-then-exit"); code != 200 || body != "answered" {
			t.Errorf("round %d: http answer then exit: %d %s", i, code, body)
		}
		if code, body, _ := s.get("/echo?after=exit"); code != 200 || !strings.HasPrefix(body, "echo after=exit") {
			t.Errorf("round %d: http after an answer and an exit: %d %s", i, code, body)
		}
		// python-wsgi: an exception the app raises (the instance lives
		// on), then a crash mid-request.
		if code, body, _ := s.get("/py/raise"); code != 502 || !strings.Contains(body, "chaos: the app raised on purpose") {
			t.Errorf("round %d: python raise: %d %s", i, code, body)
		}
		if code, body, _ := s.get("/py/ok"); code != 200 || !strings.HasPrefix(body, "ok ") {
			t.Errorf("round %d: python after a raise: %d %s", i, code, body)
		}
		if code, body, _ := s.get("/py/exit"); code != 502 || !strings.Contains(body, "Runtime.ExitError") {
			t.Errorf("round %d: python exit: %d %s", i, code, body)
		}
		if code, body, _ := s.get("/py/ok"); code != 200 || !strings.HasPrefix(body, "ok ") {
			t.Errorf("round %d: python after an exit: %d %s", i, code, body)
		}
	}
}
