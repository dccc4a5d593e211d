package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/gateway"
	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/record"
	httprt "github.com/stokehq/stoke/internal/runtime/http"
	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// The test binary doubles as the function's app.
func TestMain(m *testing.M) {
	sandbox.MaybeRunStub()
	if os.Getenv("STOKE_GW_APP") != "" {
		http.HandleFunc("/fwd", func(w http.ResponseWriter, r *http.Request) {
			out := map[string]string{}
			for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port", "Forwarded"} {
				out[k] = strings.Join(r.Header[k], " | ")
			}
			_ = json.NewEncoder(w).Encode(out)
		})
		l, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
		if err != nil {
			os.Exit(1)
		}
		// /unlisten: the app stops taking connections but lives on, so
		// the next request cannot reach it and the pool does not know.
		http.HandleFunc("/unlisten", func(w http.ResponseWriter, r *http.Request) {
			l.Close()
			w.Header().Set("Connection", "close")
			fmt.Fprint(w, "unlistened")
		})
		http.HandleFunc("/body", func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%d %x", len(b), sha256.Sum256(b))
		})
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			ms, _ := strconv.Atoi(r.URL.Query().Get("sleep"))
			time.Sleep(time.Duration(ms) * time.Millisecond)
			// hold=PATH answers only once the test creates PATH: a request
			// in flight for exactly as long as the test needs.
			for hold := r.URL.Query().Get("hold"); hold != ""; time.Sleep(time.Millisecond) {
				if _, err := os.Stat(hold); err == nil || r.Context().Err() != nil {
					break
				}
			}
			fmt.Fprintf(w, "%s %s", os.Getenv("STOKE_GW_APP"), r.URL.Path)
		})
		_ = http.Serve(l, nil)
		select {} // unlistened: live on
	}
	sandboxtest.InOwnMountNamespace()
	os.Exit(m.Run())
}

// recorder keeps what the gateway records.
type recorder struct {
	mu    sync.Mutex
	recs  []record.Record
	begun int
}

func (r *recorder) Begin(*record.Record) { r.mu.Lock(); r.begun++; r.mu.Unlock() }
func (r *recorder) End(rec *record.Record) {
	r.mu.Lock()
	r.recs = append(r.recs, *rec)
	r.mu.Unlock()
}

// byID waits for the record of a request: the gateway sends the response
// before it records, so a client can be faster than the record.
func (r *recorder) byID(t *testing.T, id string) record.Record {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		r.mu.Lock()
		for _, rec := range r.recs {
			if rec.RequestID == id {
				r.mu.Unlock()
				return rec
			}
		}
		r.mu.Unlock()
	}
	t.Fatalf("no record of request %s", id)
	return record.Record{}
}

// eventually polls cond until it holds, failing t after 15 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// busy says whether fn's pool has an instance with a request in flight.
func busy(fn *gateway.Function) bool {
	for _, in := range fn.Pool.(*pool.Pool).Instances() {
		if in.State == pool.StateBusy {
			return true
		}
	}
	return false
}

type fixture struct {
	t   *testing.T
	sb  *sandbox.Manager
	gw  *gateway.Gateway
	rec *recorder
	srv *httptest.Server
}

func newFixture(t *testing.T, gwTimeout time.Duration) *fixture {
	sandboxtest.CheckNoLeaks(t)
	sb, err := sandbox.New(slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	f := &fixture{t: t, sb: sb, rec: &recorder{}}
	f.gw = gateway.New(gateway.Options{Timeout: gwTimeout, MaxBodyBytes: 1 << 20, Granularity: 100 * time.Millisecond, Recorder: f.rec})
	f.srv = httptest.NewServer(f.gw)
	t.Cleanup(f.srv.Close)
	return f
}

// function makes a deployed function whose app answers "<tag> <path>".
func (f *fixture) function(name, tag string, timeout time.Duration, o pool.Options, routes ...string) *gateway.Function {
	cf := &config.Function{
		Name: name, Runtime: "http", Command: []string{os.Args[0]}, Cwd: f.t.TempDir(),
		Env:    map[string]string{"STOKE_GW_APP": tag},
		Memory: 1769, Timeout: timeout, Concurrency: max(o.Concurrency, 1), InitTimeout: 10 * time.Second,
		Readiness: config.Readiness{Protocol: "http", Path: "/", StatusMin: 100, StatusMax: 499},
	}
	o.Runtime = httprt.New(httprt.Options{Function: cf, Version: tag, Sandbox: f.sb})
	if o.MaxInstances == 0 {
		o.MaxInstances = 2
	}
	p := pool.New(o)
	p.Start()
	f.t.Cleanup(p.Close)
	return &gateway.Function{Name: name, Version: tag, MemoryMB: 1769, Timeout: timeout, Routes: routes, Pool: p, Concurrency: cf.Concurrency}
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRoutesAndRecords(t *testing.T) {
	f := newFixture(t, 5*time.Second)
	f.gw.Set([]*gateway.Function{
		f.function("a", "A", 5*time.Second, pool.Options{}, "/a", "/a/*"),
		f.function("b", "B", 5*time.Second, pool.Options{}, "/b*"),
	})
	for path, want := range map[string]string{"/a": "A /a", "/a/x/y": "A /a/x/y", "/b": "B /b", "/bcd/e": "B /bcd/e"} {
		resp, body := get(t, f.srv.URL+path)
		if resp.StatusCode != 200 || body != want {
			t.Errorf("%s: got %d %q, want %q", path, resp.StatusCode, body, want)
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id", path)
		}
	}
	resp, body := get(t, f.srv.URL+"/ab")
	if resp.StatusCode != 404 || !strings.Contains(body, "no function is routed at /ab") {
		t.Errorf("unrouted path: %d %s", resp.StatusCode, body)
	}
	resp, _ = get(t, f.srv.URL+"/a")
	if resp.Header.Get("X-Stoke-Cold") != "false" {
		t.Error("second request to a should be warm")
	}
	r := f.rec.byID(t, resp.Header.Get("X-Request-Id"))
	if r.Function != "a" || r.Cold || r.Status != 200 || r.MemoryMB != 1769 {
		t.Errorf("record: %+v", r)
	}
	if r.BilledMS%100 != 0 || r.BilledMS < 100 {
		t.Errorf("billed %d ms at 100ms granularity", r.BilledMS)
	}
	f.rec.mu.Lock()
	cold := 0
	for _, r := range f.rec.recs {
		if r.Cold {
			cold++
			if r.InitMS <= 0 {
				t.Errorf("cold record without init time: %+v", r)
			}
		}
	}
	f.rec.mu.Unlock()
	if cold != 2 {
		t.Errorf("want 2 cold starts (one per function), got %d", cold)
	}
}

// A cold start's record says whether its init ran boosted; a warm one never
// does.
func TestInitBoostRecorded(t *testing.T) {
	f := newFixture(t, 5*time.Second)
	boosted := f.function("a", "A", 5*time.Second, pool.Options{MaxInstances: 1}, "/a")
	boosted.InitBoost = true
	plain := f.function("b", "B", 5*time.Second, pool.Options{MaxInstances: 1}, "/b")
	f.gw.Set([]*gateway.Function{boosted, plain})
	for _, c := range []struct {
		path            string
		cold, initBoost bool
	}{{"/a", true, true}, {"/a", false, false}, {"/b", true, false}, {"/b", false, false}} {
		resp, _ := get(t, f.srv.URL+c.path)
		r := f.rec.byID(t, resp.Header.Get("X-Request-Id"))
		if r.Cold != c.cold || r.InitBoost != c.initBoost {
			t.Errorf("%s: cold %t init boost %t, want %t %t", c.path, r.Cold, r.InitBoost, c.cold, c.initBoost)
		}
	}
}

func TestFunctionTimeout(t *testing.T) {
	f := newFixture(t, 5*time.Second)
	f.gw.Set([]*gateway.Function{f.function("slow", "S", 300*time.Millisecond, pool.Options{}, "/s")})
	resp, body := get(t, f.srv.URL+"/s?sleep=2000")
	if resp.StatusCode != 504 || !strings.Contains(body, "Task timed out after 0.30 seconds") {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	if r := f.rec.byID(t, resp.Header.Get("X-Request-Id")); r.ErrorType != "Sandbox.Timedout" || r.Status != 504 {
		t.Errorf("record: %+v", r)
	}
	// The runaway instance was stopped: the next request is a cold start.
	resp, _ = get(t, f.srv.URL+"/s")
	if resp.StatusCode != 200 || resp.Header.Get("X-Stoke-Cold") != "true" {
		t.Errorf("after a timeout the next request should cold start: %d cold=%s", resp.StatusCode, resp.Header.Get("X-Stoke-Cold"))
	}
}

func TestGatewayTimeoutSaysWhichLayer(t *testing.T) {
	f := newFixture(t, 300*time.Millisecond)
	f.gw.Set([]*gateway.Function{f.function("slow", "S", 10*time.Second, pool.Options{}, "/s")})
	resp, body := get(t, f.srv.URL+"/s?sleep=2000")
	if resp.StatusCode != 504 || !strings.Contains(body, "gateway.timeout") || resp.Header.Get("X-Amzn-Errortype") != "Gateway.Timeout" {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
}

func TestThrottleBody(t *testing.T) {
	f := newFixture(t, 5*time.Second)
	one := f.function("one", "O", 5*time.Second, pool.Options{MaxInstances: 1, QueueSize: 0}, "/o")
	f.gw.Set([]*gateway.Function{one})
	get(t, f.srv.URL+"/o") // warm it
	hold := filepath.Join(t.TempDir(), "release")
	done := make(chan struct{})
	go func() {
		defer close(done)
		get(t, f.srv.URL+"/o?hold="+url.QueryEscape(hold))
	}()
	// Busy alone could still be the warm-up request, whose instance is
	// released just after its response: wait for the held request's own
	// invocation to begin (the recorder's second Begin).
	eventually(t, "the held request on the only instance", func() bool {
		f.rec.mu.Lock()
		begun := f.rec.begun
		f.rec.mu.Unlock()
		return begun >= 2 && busy(one)
	})
	resp, body := get(t, f.srv.URL+"/o")
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	<-done
	if resp.StatusCode != 429 || resp.Header.Get("X-Amzn-Errortype") != "TooManyRequestsException" {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	var e struct{ Reason, Type, Message string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Reason != "ConcurrentInvocationLimitExceeded" || e.Message != "Rate Exceeded." {
		t.Errorf("429 body %s (%v)", body, err)
	}
	if r := f.rec.byID(t, resp.Header.Get("X-Request-Id")); r.Status != 429 || r.ErrorType != "TooManyRequestsException" {
		t.Errorf("record of the throttled request: %+v", r)
	}
}

func TestBodyTooLarge(t *testing.T) {
	f := newFixture(t, 5*time.Second)
	f.gw.Set([]*gateway.Function{f.function("a", "A", 5*time.Second, pool.Options{}, "/a")})
	resp, err := http.Post(f.srv.URL+"/a", "application/octet-stream", strings.NewReader(strings.Repeat("x", 2<<20)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || !strings.Contains(string(b), "exceeds the limit of 1048576 bytes") {
		t.Fatalf("got %d %s", resp.StatusCode, b)
	}
}

// Swapping a function's version while requests flow drops none of them: the
// old pool drains, requests racing the swap are retried on the new pool.
func TestDeploySwapDropsNothing(t *testing.T) {
	f := newFixture(t, 10*time.Second)
	v1 := f.function("a", "v1", 5*time.Second, pool.Options{MaxInstances: 4, QueueSize: 100}, "/a")
	f.gw.Set([]*gateway.Function{v1})
	get(t, f.srv.URL+"/a")

	var ok, failed atomic.Int64
	var sawV2 atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(f.srv.URL + "/a?sleep=20")
				if err != nil {
					failed.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					t.Logf("status %d: %s", resp.StatusCode, b)
					continue
				}
				if strings.HasPrefix(string(b), "v2") {
					sawV2.Store(true)
				}
				ok.Add(1)
			}
		}()
	}
	eventually(t, "traffic on v1", func() bool { return ok.Load() >= 10 })
	v2 := f.function("a", "v2", 5*time.Second, pool.Options{MaxInstances: 4, QueueSize: 100}, "/a")
	f.gw.Set([]*gateway.Function{v2})
	if err := v1.Pool.(*pool.Pool).Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	v1.Pool.(*pool.Pool).Close()
	swapped := ok.Load()
	eventually(t, "traffic on v2 after v1 closed", func() bool { return sawV2.Load() && ok.Load() >= swapped+10 })
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || !sawV2.Load() || ok.Load() < 10 {
		t.Fatalf("ok %d failed %d sawV2 %v", ok.Load(), failed.Load(), sawV2.Load())
	}
}

// Above concurrency 1, a client giving up must not stop the instance the
// other requests in flight are running on.
func TestClientGoneKeepsSharedInstance(t *testing.T) {
	f := newFixture(t, 5*time.Second)
	f.gw.Set([]*gateway.Function{f.function("c", "C", 5*time.Second, pool.Options{MaxInstances: 1, Concurrency: 4}, "/c")})
	get(t, f.srv.URL+"/c")
	var wg sync.WaitGroup
	codes := make(chan int, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := get(t, f.srv.URL+"/c?sleep=600")
			codes <- resp.StatusCode
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/c?sleep=600", nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("the impatient client should have given up")
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("a request sharing the instance failed with %d", c)
		}
	}
}

// A body of unknown length is held to the limit too, even when the app
// would answer without reading it; one under the limit reaches the app
// whole, with its length.
func TestChunkedBodyLimit(t *testing.T) {
	f := newFixture(t, 5*time.Second)
	f.gw.Set([]*gateway.Function{f.function("a", "A", 5*time.Second, pool.Options{}, "/a")})
	post := func(n int) (*http.Response, string) {
		// An io.Reader the client cannot size: it sends the body chunked.
		body := io.MultiReader(strings.NewReader(strings.Repeat("x", n)))
		req, _ := http.NewRequest("POST", f.srv.URL+"/a", body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := post(2 << 20)
	if resp.StatusCode != 413 || !strings.Contains(body, "request body sent in chunks exceeds the limit of 1048576 bytes") ||
		resp.Header.Get("X-Stoke-Cold") != "false" || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("2 MB chunked: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if resp, body := post(512 << 10); resp.StatusCode != 200 || body != "A /a" {
		t.Errorf("512 KB chunked: %d %s", resp.StatusCode, body)
	}
}

// Every response says whether it waited for a cold start: a route miss, and
// a 502 from an instance that failed to start for this request (it waited
// for that init).
func TestStokeColdOnEveryResponse(t *testing.T) {
	f := newFixture(t, 5*time.Second)
	cf := &config.Function{
		Name: "crash", Runtime: "http", Command: []string{"/bin/false"}, Cwd: t.TempDir(),
		Memory: 128, Timeout: 5 * time.Second, Concurrency: 1, InitTimeout: 5 * time.Second,
		Readiness: config.Readiness{Protocol: "http", Path: "/", StatusMin: 100, StatusMax: 499},
	}
	p := pool.New(pool.Options{Runtime: httprt.New(httprt.Options{Function: cf, Version: "1", Sandbox: f.sb}), MaxInstances: 1})
	p.Start()
	t.Cleanup(p.Close)
	f.gw.Set([]*gateway.Function{{Name: "crash", Version: "1", MemoryMB: 128, Timeout: 5 * time.Second, Routes: []string{"/crash"}, Pool: p, Concurrency: 1}})
	resp, body := get(t, f.srv.URL+"/crash")
	if resp.StatusCode != 502 || resp.Header.Get("X-Stoke-Cold") != "true" || !strings.Contains(body, "Runtime.") {
		t.Errorf("init failure: %d cold %q %s", resp.StatusCode, resp.Header.Get("X-Stoke-Cold"), body)
	}
	// The failed start's record carries what Stoke said about it.
	if rec := f.rec.byID(t, resp.Header.Get("X-Request-Id")); !strings.HasPrefix(rec.ErrorType, "Runtime.") || rec.ErrorMessage == "" {
		t.Errorf("record of the failed start: %q %q", rec.ErrorType, rec.ErrorMessage)
	}
	resp, _ = get(t, f.srv.URL+"/nowhere")
	if resp.StatusCode != 404 || resp.Header.Get("X-Stoke-Cold") != "false" || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("route miss: %d %v", resp.StatusCode, resp.Header)
	}
}

// A request its instance never received (the app stopped taking
// connections, unknown to the pool) runs on another instance, body and
// all, and is recorded once, on the instance that served it.
func TestUndeliveredRunsOnAnotherInstance(t *testing.T) {
	f := newFixture(t, 10*time.Second)
	fn := f.function("u", "U", 5*time.Second, pool.Options{MaxInstances: 2}, "/unlisten", "/body")
	f.gw.Set([]*gateway.Function{fn})
	for _, size := range []int{1000, 200 << 10} { // read before dialling, and streamed
		if resp, body := get(t, f.srv.URL+"/unlisten"); resp.StatusCode != 200 || body != "unlistened" {
			t.Fatalf("unlisten: %d %s", resp.StatusCode, body)
		}
		first := fn.Pool.(*pool.Pool).Instances()
		if len(first) != 1 {
			t.Fatalf("instances: %+v", first)
		}
		eventually(t, "the instance idle again", func() bool {
			in := fn.Pool.(*pool.Pool).Instances()
			return len(in) == 1 && in[0].State == pool.StateIdle
		})
		payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		resp, err := http.Post(f.srv.URL+"/body", "application/octet-stream", bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf("%d %x", len(payload), sha256.Sum256(payload))
		if resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("%d bytes: got %d %q, want %q", size, resp.StatusCode, b, want)
		}
		r := f.rec.byID(t, resp.Header.Get("X-Request-Id"))
		if r.InstanceID == first[0].ID || !r.Cold || r.Status != 200 {
			t.Errorf("record: %+v (first instance %s)", r, first[0].ID)
		}
		eventually(t, "the unreachable instance gone", func() bool {
			for _, in := range fn.Pool.(*pool.Pool).Instances() {
				if in.ID == first[0].ID {
					return false
				}
			}
			return true
		})
	}
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	if f.rec.begun != len(f.rec.recs)+2 {
		t.Errorf("%d begun, %d recorded: each retried request begins twice and is recorded once", f.rec.begun, len(f.rec.recs))
	}
}
