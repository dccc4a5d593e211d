package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/cache"
	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/gateway"
	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/record"
	httprt "github.com/stokehq/stoke/internal/runtime/http"
	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// The cache tests' function: the test binary again (init runs before
// TestMain, and only in the app's process, which has STOKE_CACHE_APP). It
// counts its own invocations, one line each in $STOKE_CACHE_APP/count, so
// a test sees what reached the function whatever the gateway says. Query
// parameters choose its answer: cc (Cache-Control), etag (with 304 to a
// matching If-None-Match), vary, wait (block until the file
// $STOKE_CACHE_APP/release exists), crash (exit without an answer once the
// file $STOKE_CACHE_APP/crash exists).
func init() {
	dir := os.Getenv("STOKE_CACHE_APP")
	if dir == "" {
		return
	}
	var mu sync.Mutex
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && r.Header.Get("User-Agent") == "" {
			return // the readiness probe
		}
		q := r.URL.Query()
		mu.Lock()
		f, err := os.OpenFile(filepath.Join(dir, "count"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%s %s\n", r.Method, r.URL.RequestURI())
			f.Close()
		}
		n := countLines(filepath.Join(dir, "count"))
		mu.Unlock()
		if _, err := os.Stat(filepath.Join(dir, "crash")); err == nil && q.Get("crash") != "" {
			os.Exit(3) // a function that fails: Stoke answers 502
		}
		if q.Get("wait") != "" {
			for {
				if _, err := os.Stat(filepath.Join(dir, "release")); err == nil {
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
		// No Date: the cache's clock is the test's, which moves on its own.
		w.Header()["Date"] = nil
		if cc := q.Get("cc"); cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		if v := q.Get("vary"); v != "" {
			w.Header().Set("Vary", v)
		}
		if etag := q.Get("etag"); etag != "" {
			w.Header().Set("Etag", `"`+etag+`"`)
			if r.Header.Get("If-None-Match") == `"`+etag+`"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		fmt.Fprintf(w, "n=%d lang=%s auth=%s", n, r.Header.Get("Accept-Language"), r.Header.Get("Authorization"))
	})
	_ = http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil)
	os.Exit(0)
}

func countLines(path string) int {
	b, _ := os.ReadFile(path)
	return bytes.Count(b, []byte("\n"))
}

// tracer keeps the records the gateway traces.
type tracer struct {
	mu   sync.Mutex
	recs []record.Record
}

func (t *tracer) Trace(r *record.Record) { t.mu.Lock(); t.recs = append(t.recs, *r); t.mu.Unlock() }

// byID waits for the trace of a request: the gateway traces after the
// response is out.
func (t *tracer) byID(tt *testing.T, id string) record.Record {
	tt.Helper()
	var rec record.Record
	waitFor(tt, "the trace of "+id, func() bool {
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, r := range t.recs {
			if r.RequestID == id {
				rec = r
				return true
			}
		}
		return false
	})
	return rec
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// hitRecorder is a recorder that is also told of cache answers.
type hitRecorder struct {
	*recorder
	hits []record.Record
}

func (h *hitRecorder) Hit(r *record.Record) { h.mu.Lock(); h.hits = append(h.hits, *r); h.mu.Unlock() }

// clock is the cache's time: tests move it instead of waiting for an entry
// to go stale.
type clock struct {
	mu sync.Mutex
	at time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.at }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.at = c.at.Add(d)
	c.mu.Unlock()
}

type cacheFixture struct {
	t     *testing.T
	dir   string // the app's: count, release
	gw    *gateway.Gateway
	fn    *gateway.Function
	pool  *pool.Pool
	rec   *hitRecorder
	trace *tracer
	clock *clock
	url   string
}

func newCacheFixture(t *testing.T, gwTimeout time.Duration, po pool.Options, co cache.Options) *cacheFixture {
	sandboxtest.CheckNoLeaks(t)
	sb, err := sandbox.New(slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	f := &cacheFixture{t: t, dir: t.TempDir(), rec: &hitRecorder{recorder: &recorder{}}, trace: &tracer{}, clock: &clock{at: time.Now()}}
	f.gw = gateway.New(gateway.Options{Timeout: gwTimeout, MaxBodyBytes: 1 << 20, Recorder: f.rec, Tracer: f.trace})
	cf := &config.Function{
		Name: "c", Runtime: "http", Command: []string{os.Args[0]}, Cwd: f.dir,
		Env:    map[string]string{"STOKE_CACHE_APP": f.dir},
		Memory: 1769, Timeout: 10 * time.Second, Concurrency: 1, InitTimeout: 10 * time.Second,
		Readiness: config.Readiness{Protocol: "http", Path: "/", StatusMin: 100, StatusMax: 499},
	}
	po.Runtime = httprt.New(httprt.Options{Function: cf, Version: "1", Sandbox: sb})
	if po.MaxInstances == 0 {
		po.MaxInstances = 1
	}
	f.pool = pool.New(po)
	f.pool.Start()
	t.Cleanup(f.pool.Close)
	if co.MaxBytes == 0 {
		co.MaxBytes = 1 << 20
	}
	co.Now = f.clock.now
	c := cache.New(co)
	t.Cleanup(c.Close) // after the pool's Close: cleanups run last first
	c.SetVersion("1")
	f.fn = &gateway.Function{Name: "c", Version: "1", MemoryMB: 1769, Timeout: cf.Timeout, Routes: []string{"/*"}, Pool: f.pool, Concurrency: 1, Cache: c}
	f.gw.Set([]*gateway.Function{f.fn})
	srv := httptest.NewServer(f.gw)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *cacheFixture) count() int { return countLines(filepath.Join(f.dir, "count")) }

func (f *cacheFixture) do(method, target string, header ...string) (*http.Response, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.url+target, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("User-Agent", "cache-test")
	for _, h := range header {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// wantCacheStatus checks a cached function's response: its Cache-Status,
// its X-Request-Id, and Age exactly when the answer came from the cache.
func wantCacheStatus(t *testing.T, resp *http.Response, prefix string) {
	t.Helper()
	got := resp.Header.Get("Cache-Status")
	if !strings.HasPrefix(got, prefix) {
		t.Fatalf("Cache-Status %q, want %s…", got, prefix)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("no X-Request-Id")
	}
	if age := resp.Header.Values("Age"); fromCache(got) != (len(age) == 1) {
		t.Fatalf("Age %q with Cache-Status %q: Age is for answers from the cache, and only for them (RFC 9111 §5.1)", age, got)
	}
}

// fromCache says whether a response with Cache-Status cs was answered
// from a stored entry: a hit (fresh or stale), another request's forward
// (collapsed, unless the wait ended first), the stored body a 304
// revalidated, or the stale entry standing in for an error.
func fromCache(cs string) bool {
	return strings.Contains(cs, "; hit") || strings.Contains(cs, "; collapsed") && !strings.Contains(cs, "detail=wait-ended") ||
		strings.Contains(cs, "fwd-status=304") || strings.Contains(cs, "detail=stale-if-error")
}

// A function that fails gets Stoke's 502 through the cache, and that is
// not an answer from the cache: no Age (it came back with Age: 2 when the
// failure took 2 s), and nothing of the stale entry the forward was
// revalidating — its ETag, Cache-Control, body.
func TestCacheErrorIsNotFromTheCache(t *testing.T) {
	f := newCacheFixture(t, 10*time.Second, pool.Options{}, cache.Options{})
	const p = "/crashy?cc=max-age%3D10&etag=abc&crash=1"
	resp, stored := f.do("GET", p)
	wantCacheStatus(t, resp, "stoke; fwd=uri-miss; fwd-status=200; stored")
	f.clock.advance(20 * time.Second)
	if err := os.WriteFile(filepath.Join(f.dir, "crash"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{p, "/crash-new?crash=1"} {
		resp, body := f.do("GET", target)
		if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(resp.Header.Get("X-Amzn-Errortype"), "Runtime.") {
			t.Fatalf("%s: %d %q: %s", target, resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), body)
		}
		wantCacheStatus(t, resp, "stoke; fwd=")
		if !strings.Contains(resp.Header.Get("Cache-Status"), "fwd-status=502") || body == stored {
			t.Fatalf("%s: Cache-Status %q, body %q", target, resp.Header.Get("Cache-Status"), body)
		}
		for _, k := range []string{"Etag", "Cache-Control", "Last-Modified"} {
			if v := resp.Header.Values(k); v != nil {
				t.Errorf("%s: the 502 carries %s %q", target, k, v)
			}
		}
	}
}

// A hit is answered without an invocation: the function counts one, the
// hit is not recorded as an invocation, and its trace is a cache span.
func TestCacheHitIsNotAnInvocation(t *testing.T) {
	f := newCacheFixture(t, 10*time.Second, pool.Options{}, cache.Options{})
	const p = "/page?cc=max-age%3D60"
	resp, body := f.do("GET", p)
	wantCacheStatus(t, resp, "stoke; fwd=uri-miss; fwd-status=200; stored")
	miss := f.rec.byID(t, resp.Header.Get("X-Request-Id"))
	if miss.Cache != "uri-miss" || miss.FromCache || miss.InstanceID == "" || miss.Start.After(miss.InvokeStart) {
		t.Fatalf("the miss's record %+v", miss)
	}
	for range 5 {
		r2, b2 := f.do("GET", p)
		wantCacheStatus(t, r2, "stoke; hit")
		if b2 != body || r2.Header.Get("X-Stoke-Cold") != "false" {
			t.Fatalf("hit %q (cold %q), first %q", b2, r2.Header.Get("X-Stoke-Cold"), body)
		}
		h := f.trace.byID(t, r2.Header.Get("X-Request-Id"))
		if !h.FromCache || h.Cache != "hit" || h.Status != 200 || h.BilledMS != 0 || h.TraceID == ([16]byte{}) {
			t.Fatalf("the hit's trace record %+v", h)
		}
	}
	if n := f.count(); n != 1 {
		t.Fatalf("the function was invoked %d times, want 1", n)
	}
	waitFor(t, "the hits' records", func() bool {
		f.rec.mu.Lock()
		defer f.rec.mu.Unlock()
		return len(f.rec.hits) == 5
	})
	f.rec.mu.Lock()
	recs := len(f.rec.recs)
	f.rec.mu.Unlock()
	if recs != 1 {
		t.Fatalf("%d invocation records, want 1", recs)
	}
	// HEAD from the stored GET; a POST goes through and invalidates.
	resp, body = f.do("HEAD", p)
	wantCacheStatus(t, resp, "stoke; hit")
	if body != "" || resp.ContentLength != int64(len("n=1 lang= auth=")) {
		t.Fatalf("HEAD: %q, length %d", body, resp.ContentLength)
	}
	resp, _ = f.do("POST", p)
	wantCacheStatus(t, resp, "stoke; fwd=method; fwd-status=200")
	resp, _ = f.do("GET", p)
	wantCacheStatus(t, resp, "stoke; fwd=uri-miss")
	if n := f.count(); n != 3 {
		t.Fatalf("%d invocations, want 3", n)
	}
}

// N concurrent misses for one key make one invocation, counted by the
// function itself; the others are answered from it.
func TestCacheCollapsesConcurrentMisses(t *testing.T) {
	const n = 16
	f := newCacheFixture(t, 10*time.Second, pool.Options{MaxInstances: 4}, cache.Options{})
	const p = "/slow?cc=max-age%3D60&wait=1"
	var wg sync.WaitGroup
	bodies := make([]string, n)
	statuses := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, b := f.do("GET", p)
			bodies[i], statuses[i] = b, resp.Header.Get("Cache-Status")
		}()
	}
	waitFor(t, "one invocation and the others waiting on it", func() bool {
		return f.count() == 1 && f.fn.Cache.Stats().Waiting == n-1
	})
	if err := os.WriteFile(filepath.Join(f.dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if c := f.count(); c != 1 {
		t.Fatalf("the function was invoked %d times, want 1", c)
	}
	collapsed := 0
	for i := range n {
		if bodies[i] != "n=1 lang= auth=" {
			t.Fatalf("answer %d: %q", i, bodies[i])
		}
		if strings.Contains(statuses[i], "collapsed") {
			collapsed++
		}
	}
	if collapsed != n-1 {
		t.Fatalf("%d answers say collapsed, want %d", collapsed, n-1)
	}
}

// A function whose instance was reaped: a stale entry within stale_if_cold
// is answered at once, and one background refresh cold-starts an instance
// and replaces it.
func TestCacheStaleWhileCold(t *testing.T) {
	f := newCacheFixture(t, 10*time.Second, pool.Options{IdleTimeout: 50 * time.Millisecond}, cache.Options{StaleIfCold: time.Minute})
	const p = "/doc?cc=max-age%3D10"
	_, first := f.do("GET", p)
	waitFor(t, "the idle instance to be reaped", func() bool { return len(f.pool.Instances()) == 0 })
	f.clock.advance(30 * time.Second)

	resp, body := f.do("GET", p)
	wantCacheStatus(t, resp, "stoke; hit; ttl=-")
	if !strings.Contains(resp.Header.Get("Cache-Status"), "detail=stale-if-cold") || body != first {
		t.Fatalf("stale answer %q, %q", resp.Header.Get("Cache-Status"), body)
	}
	if age, _ := strconv.Atoi(resp.Header.Get("Age")); age < 30 {
		t.Fatalf("Age %d", age)
	}
	// The refresh is an invocation of its own, cold, recorded as such.
	var refresh record.Record
	waitFor(t, "the background refresh's record", func() bool {
		f.rec.mu.Lock()
		defer f.rec.mu.Unlock()
		for _, r := range f.rec.recs {
			if r.Cache == "refresh" {
				refresh = r
				return true
			}
		}
		return false
	})
	if !refresh.Cold || refresh.Status != 200 || refresh.RequestID == resp.Header.Get("X-Request-Id") {
		t.Fatalf("refresh record %+v", refresh)
	}
	if n := f.count(); n != 2 {
		t.Fatalf("%d invocations, want 2", n)
	}
	waitFor(t, "the refreshed entry", func() bool {
		return f.fn.Cache.Stats().Waiting == 0 && f.fn.Cache.Stats().Refreshes == 1
	})
	resp, body = f.do("GET", p)
	wantCacheStatus(t, resp, "stoke; hit; ttl=")
	if body != "n=2 lang= auth=" {
		t.Fatalf("after the refresh: %q", body)
	}
}

// Authenticated answers are not shared unless the function says public;
// Vary keeps languages apart; revalidation sends the stored ETag and a
// 304 refreshes the entry.
func TestCacheAuthorizationVaryRevalidation(t *testing.T) {
	f := newCacheFixture(t, 10*time.Second, pool.Options{}, cache.Options{})
	const priv = "/me?cc=max-age%3D60"
	f.do("GET", priv, "Authorization: Bearer alice")
	if _, b := f.do("GET", priv, "Authorization: Bearer bob"); !strings.HasSuffix(b, "auth=Bearer bob") {
		t.Fatalf("bob got %q", b)
	}
	if _, b := f.do("GET", priv); !strings.HasSuffix(b, "auth=") {
		t.Fatalf("anonymous got %q", b)
	}

	const v = "/v?cc=max-age%3D60&vary=Accept-Language"
	f.do("GET", v, "Accept-Language: en")
	f.do("GET", v, "Accept-Language: fr")
	for _, lang := range []string{"en", "fr", "en"} {
		resp, b := f.do("GET", v, "Accept-Language: "+lang)
		wantCacheStatus(t, resp, "stoke; hit")
		if !strings.Contains(b, "lang="+lang+" ") {
			t.Fatalf("%s got %q", lang, b)
		}
	}

	const e = "/e?cc=max-age%3D10&etag=abc"
	_, b1 := f.do("GET", e)
	f.clock.advance(20 * time.Second)
	before := f.count()
	resp, b2 := f.do("GET", e)
	wantCacheStatus(t, resp, "stoke; fwd=stale; fwd-status=304; ttl=10")
	if b2 != b1 || f.count() != before+1 {
		t.Fatalf("revalidated body %q (first %q), invocations %d→%d", b2, b1, before, f.count())
	}
	rec := f.rec.byID(t, resp.Header.Get("X-Request-Id"))
	if rec.Cache != "stale" || rec.Status != http.StatusNotModified {
		t.Fatalf("revalidation record %+v", rec)
	}
}

// A request alone on its key (it leads the forward others could wait on)
// whose gateway timeout passes gets 504 Gateway.Timeout: the forward is
// cancelled because its last waiter left at its gateway timeout, which is
// not a client that went away (499). (The leader of the test below saw 499
// when the other request joined too late to keep the forward alive.)
func TestCacheLeaderAloneGatewayTimeout(t *testing.T) {
	f := newCacheFixture(t, time.Second, pool.Options{KeepWarm: 1}, cache.Options{})
	waitFor(t, "the keep_warm instance", f.pool.Idle)
	defer os.WriteFile(filepath.Join(f.dir, "release"), nil, 0o644) // lets the abandoned app go
	r, body := f.do("GET", "/stuck-alone?cc=max-age%3D60&wait=1")
	if r.StatusCode != http.StatusGatewayTimeout || r.Header.Get("X-Amzn-Errortype") != "Gateway.Timeout" {
		t.Fatalf("%d %q: %s", r.StatusCode, r.Header.Get("X-Amzn-Errortype"), body)
	}
	wantCacheStatus(t, r, "stoke; fwd=uri-miss")
}

// A request waiting for another's invocation waits no longer than the
// gateway timeout, and says so.
func TestCacheCollapsedWaitBoundedByGatewayTimeout(t *testing.T) {
	// A warm instance, so the first request reaches the app well within
	// the timeout even on a loaded machine.
	f := newCacheFixture(t, time.Second, pool.Options{KeepWarm: 1}, cache.Options{})
	waitFor(t, "the keep_warm instance", f.pool.Idle)
	const p = "/stuck?cc=max-age%3D60&wait=1"
	var wg sync.WaitGroup
	var leader, follower *http.Response
	wg.Add(1)
	go func() { defer wg.Done(); leader, _ = f.do("GET", p) }()
	waitFor(t, "the first request's invocation", func() bool { return f.count() == 1 })
	wg.Add(1)
	go func() { defer wg.Done(); follower, _ = f.do("GET", p) }()
	wg.Wait()
	for _, r := range []*http.Response{leader, follower} {
		if r.StatusCode != http.StatusGatewayTimeout || r.Header.Get("X-Amzn-Errortype") != "Gateway.Timeout" {
			t.Fatalf("%d %q", r.StatusCode, r.Header.Get("X-Amzn-Errortype"))
		}
		wantCacheStatus(t, r, "stoke; fwd=uri-miss")
	}
	os.WriteFile(filepath.Join(f.dir, "release"), nil, 0o644) // lets the abandoned app go
}
