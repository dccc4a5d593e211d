package cache

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable time source, so freshness is tested without waiting.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// origin is the function behind the cache in these unit tests: an HTTP
// handler that counts its invocations. (The gateway's tests put real
// processes behind it.)
type origin struct {
	handler http.HandlerFunc
	calls   atomic.Int64
	cold    atomic.Bool
	version atomic.Pointer[string]

	mu       sync.Mutex
	requests []*http.Request // as forwarded
	forwards []Forward
	failures []error
}

func newOrigin(h http.HandlerFunc) *origin {
	o := &origin{handler: h}
	v := "1"
	o.version.Store(&v)
	return o
}

func (o *origin) Forward(w http.ResponseWriter, r *http.Request, f Forward) (string, error) {
	o.calls.Add(1)
	o.mu.Lock()
	o.requests = append(o.requests, r)
	o.forwards = append(o.forwards, f)
	o.mu.Unlock()
	o.handler(w, r)
	return *o.version.Load(), nil
}

func (o *origin) Warm() bool { return !o.cold.Load() }

func (o *origin) Fail(w http.ResponseWriter, r *http.Request, err error) {
	o.mu.Lock()
	o.failures = append(o.failures, err)
	o.mu.Unlock()
	status := http.StatusGatewayTimeout
	if !errors.Is(err, ErrNotCached) && !errors.Is(err, context.DeadlineExceeded) {
		status = 499
	}
	w.WriteHeader(status)
}

func (o *origin) last() *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.requests[len(o.requests)-1]
}

func (o *origin) lastForward() Forward {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.forwards[len(o.forwards)-1]
}

// env is a cache on a test clock with version "1" current.
type env struct {
	t  *testing.T
	c  *Cache
	ck *clock
}

func newEnv(t *testing.T, o Options) *env {
	t.Helper()
	ck := newClock()
	o.Now = ck.Now
	if o.MaxBytes == 0 {
		o.MaxBytes = 1 << 20
	}
	c := New(o)
	c.SetVersion("1")
	t.Cleanup(c.Close)
	return &env{t: t, c: c, ck: ck}
}

// get sends one request: method and path, then header lines "K: V".
func (e *env) do(o *origin, method, target string, header ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for _, h := range header {
		k, v, _ := strings.Cut(h, ":")
		r.Header.Add(k, strings.TrimSpace(v))
	}
	w := httptest.NewRecorder()
	e.c.Serve(w, r, o)
	return w
}

func (e *env) get(o *origin, target string, header ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.do(o, http.MethodGet, target, header...)
}

// respond is a handler answering with the given header lines and body.
func respond(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for _, h := range header {
			k, v, _ := strings.Cut(h, ":")
			w.Header().Add(k, strings.TrimSpace(v))
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func wantStatus(t *testing.T, w *httptest.ResponseRecorder, code int, cacheStatus string) {
	t.Helper()
	if w.Code != code {
		t.Fatalf("status %d, want %d (Cache-Status %q)", w.Code, code, w.Header().Get("Cache-Status"))
	}
	if got := w.Header().Get("Cache-Status"); got != cacheStatus {
		t.Fatalf("Cache-Status %q, want %q", got, cacheStatus)
	}
}

func wantCalls(t *testing.T, o *origin, n int64) {
	t.Helper()
	if got := o.calls.Load(); got != n {
		t.Fatalf("the function was invoked %d times, want %d", got, n)
	}
}

// waitFor polls cond (a background refresh is observable only by its
// effects) for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
