package pool_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/runtime"
	httprt "github.com/stokehq/stoke/internal/runtime/http"
	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// The test binary doubles as the function's app: a real process serving
// HTTP on $PORT, started in a real cgroup by the real http runtime.
func TestMain(m *testing.M) {
	sandbox.MaybeRunStub()
	if os.Getenv("STOKE_POOL_APP") == "1" {
		app()
		return
	}
	sandboxtest.InOwnMountNamespace()
	os.Exit(m.Run())
}

func app() {
	if d, _ := strconv.Atoi(os.Getenv("START_DELAY_MS")); d > 0 {
		time.Sleep(time.Duration(d) * time.Millisecond)
	}
	// START_HOLD=path: the init lasts until the test creates path.
	for hold := os.Getenv("START_HOLD"); hold != ""; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(hold); err == nil {
			break
		}
	}
	if os.Getenv("EXIT_AT_START") == "1" {
		fmt.Fprintln(os.Stderr, "cannot start: config missing")
		os.Exit(4)
	}
	// FAIL_ONCE=PATH: the first start (which makes PATH) fails.
	if path := os.Getenv("FAIL_ONCE"); path != "" {
		if _, err := os.Stat(path); err != nil {
			_ = os.WriteFile(path, nil, 0o644)
			fmt.Fprintln(os.Stderr, "first start fails")
			os.Exit(5)
		}
	}
	// FAIL_UNTIL=PATH: every start fails until the test creates PATH.
	if path := os.Getenv("FAIL_UNTIL"); path != "" {
		if _, err := os.Stat(path); err != nil {
			fmt.Fprintln(os.Stderr, "cannot start yet: no", filepath.Base(path))
			os.Exit(7)
		}
	}
	// EXIT_AFTER_MS: ready, then gone that soon after, having served nothing.
	if ms, _ := strconv.Atoi(os.Getenv("EXIT_AFTER_MS")); ms > 0 {
		time.AfterFunc(time.Duration(ms)*time.Millisecond, func() { os.Exit(6) })
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("sleep"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintf(w, "%d", os.Getpid())
	})
	_ = http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil)
}

type env struct {
	t  testing.TB
	sb *sandbox.Manager
}

func newEnv(t testing.TB) *env {
	t.Helper()
	sandboxtest.CheckNoLeaks(t)
	sb, err := sandbox.New(slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	return &env{t: t, sb: sb}
}

// pool makes a started pool of the test app; extra env configures the app.
func (e *env) pool(o pool.Options, appEnv ...string) *pool.Pool {
	e.t.Helper()
	f := &config.Function{
		Name: "t", Runtime: "http", Command: []string{os.Args[0]}, Cwd: e.t.TempDir(),
		Env:    map[string]string{"STOKE_POOL_APP": "1"},
		Memory: 1769, Timeout: 10 * time.Second, Concurrency: max(o.Concurrency, 1), InitTimeout: 10 * time.Second,
		Readiness: config.Readiness{Protocol: "http", Path: "/", StatusMin: 100, StatusMax: 499},
	}
	for i := 0; i+1 < len(appEnv); i += 2 {
		f.Env[appEnv[i]] = appEnv[i+1]
	}
	o.Runtime = httprt.New(httprt.Options{Function: f, Version: "1", Sandbox: e.sb})
	if o.Logger == nil {
		o.Logger = slog.New(failOnError{e.t})
	}
	p := pool.New(o)
	p.Start()
	e.t.Cleanup(p.Close)
	return p
}

// failOnError fails the test on any Error record: the pool logs one for a
// state transition its table does not allow.
type failOnError struct{ t testing.TB }

func (h failOnError) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h failOnError) Handle(_ context.Context, r slog.Record) error {
	h.t.Errorf("pool logged an error: %s", r.Message)
	r.Attrs(func(a slog.Attr) bool { h.t.Errorf("  %s", a); return true })
	return nil
}
func (h failOnError) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h failOnError) WithGroup(string) slog.Handler      { return h }

func acquire(t testing.TB, p *pool.Pool) *pool.Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := p.Acquire(ctx)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	return l
}

// call sends a request through the lease's instance and returns the app's pid.
func call(t testing.TB, l *pool.Lease, query string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/?"+query, nil)
	if err := l.Instance.Invoke(rec, req); err != nil {
		t.Fatalf("invoke: %v", err)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func countState(p *pool.Pool, s pool.State) int {
	n := 0
	for _, in := range p.Instances() {
		if in.State == s {
			n++
		}
	}
	return n
}

func TestColdThenWarm(t *testing.T) {
	p := newEnv(t).pool(pool.Options{MaxInstances: 3})
	if n := len(p.Instances()); n != 0 {
		t.Fatalf("no instance should run before a request (scale to zero), got %d", n)
	}
	l := acquire(t, p)
	if !l.Cold {
		t.Error("first request should be cold")
	}
	if l.Instance.InitDuration() <= 0 {
		t.Error("cold instance should report its init duration")
	}
	pid1 := call(t, l, "")
	l.Release()
	l2 := acquire(t, p)
	defer l2.Release()
	if l2.Cold {
		t.Error("second request should be warm")
	}
	if pid2 := call(t, l2, ""); pid2 != pid1 || l2.InstanceID != l.InstanceID {
		t.Errorf("warm request went to another instance: pid %s then %s", pid1, pid2)
	}
	if n := len(p.Instances()); n != 1 {
		t.Errorf("want 1 instance, got %d", n)
	}
}

// A waiting request is served by whichever instance frees first: a warm one
// finishing beats a slow cold start. The second instance's init lasts until
// the test ends it, so "first" is decided by the test, not by the load.
func TestFirstFreeServesBeforeSlowColdStart(t *testing.T) {
	hold := filepath.Join(t.TempDir(), "go")
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := newEnv(t).pool(pool.Options{MaxInstances: 2}, "START_HOLD", hold)
	a := acquire(t, p) // cold, passes the hold at once
	first := a.InstanceID
	if err := os.Remove(hold); err != nil { // from now on an init lasts until hold exists
		t.Fatal(err)
	}
	defer os.WriteFile(hold, nil, 0o644)
	type res struct {
		l   *pool.Lease
		err error
	}
	ch := make(chan res, 1)
	go func() {
		l, err := p.Acquire(context.Background())
		ch <- res{l, err}
	}()
	waitFor(t, "a second instance to start", func() bool { return countState(p, pool.StateStarting) == 1 })
	waitFor(t, "the request to wait", func() bool { return p.Waiting() == 1 })
	a.Release()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.l.Release()
	if r.l.InstanceID != first || r.l.Cold {
		t.Errorf("waiting request should get the warm instance that freed first (%s), got %s cold=%v", first, r.l.InstanceID, r.l.Cold)
	}
	if n := countState(p, pool.StateStarting); n != 1 {
		t.Errorf("%d instances starting when the request was served, want the held one", n)
	}
	// The instance started for it still comes up and is kept, idle.
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second instance to be idle", func() bool { return countState(p, pool.StateIdle) == 1 })
}

func TestQueueThenThrottle(t *testing.T) {
	p := newEnv(t).pool(pool.Options{MaxInstances: 1, QueueSize: 1})
	a := acquire(t, p)
	got := make(chan *pool.Lease, 1)
	go func() {
		l, err := p.Acquire(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	waitFor(t, "one waiter", func() bool { return p.Waiting() == 1 })
	if _, err := p.Acquire(context.Background()); !errors.Is(err, pool.ErrThrottled) {
		t.Fatalf("third request beyond max_instances and queue: want ErrThrottled, got %v", err)
	}
	a.Release()
	b := <-got
	if b.InstanceID != a.InstanceID {
		t.Error("queued request should get the only instance")
	}
	b.Release()
}

func TestQueuedRequestGivesUpOnContext(t *testing.T) {
	p := newEnv(t).pool(pool.Options{MaxInstances: 1, QueueSize: 5})
	a := acquire(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline exceeded, got %v", err)
	}
	if p.Waiting() != 0 {
		t.Error("a request that gave up should leave the queue")
	}
	a.Release()
	b := acquire(t, p) // the instance is still usable
	b.Release()
}

func TestKeepWarmStartsAndReplaces(t *testing.T) {
	p := newEnv(t).pool(pool.Options{MaxInstances: 3, KeepWarm: 2})
	waitFor(t, "2 warm instances", func() bool { return countState(p, pool.StateIdle) == 2 })
	l := acquire(t, p)
	if l.Cold {
		t.Error("a request served by a keep_warm instance is not cold")
	}
	l.Release()
	victim := p.Instances()[0]
	if err := syscall.Kill(victim.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the killed instance to be replaced", func() bool {
		ins := p.Instances()
		if len(ins) != 2 {
			return false
		}
		for _, in := range ins {
			if in.ID == victim.ID || in.State != pool.StateIdle {
				return false
			}
		}
		return true
	})
}

func TestIdleInstancesStopAboveKeepWarm(t *testing.T) {
	p := newEnv(t).pool(pool.Options{MaxInstances: 3, KeepWarm: 1, IdleTimeout: 150 * time.Millisecond})
	waitFor(t, "1 warm instance", func() bool { return countState(p, pool.StateIdle) == 1 })
	a, b := acquire(t, p), acquire(t, p) // the second one is a cold start
	if a.InstanceID == b.InstanceID {
		t.Fatal("two concurrent requests share an instance at concurrency 1")
	}
	a.Release()
	b.Release()
	if n := len(p.Instances()); n != 2 {
		t.Fatalf("want 2 instances, got %d", n)
	}
	waitFor(t, "scale down to keep_warm", func() bool { return len(p.Instances()) == 1 })
	// The keep_warm instance stays however long it idles: watch it through
	// many reaper rounds (one per 15 ms here).
	waitFor(t, "the keep_warm instance idle for 3× idle_timeout", func() bool {
		ins := p.Instances()
		if len(ins) != 1 {
			t.Fatalf("keep_warm instance was stopped: %d left", len(ins))
		}
		return ins[0].Idle > 3*150*time.Millisecond
	})
}

func TestBusyInstanceIsNeverStopped(t *testing.T) {
	p := newEnv(t).pool(pool.Options{MaxInstances: 1, IdleTimeout: 20 * time.Millisecond})
	l := acquire(t, p)
	pid := call(t, l, "sleep=400") // busy far longer than the idle timeout
	if st := p.Instances(); len(st) != 1 || st[0].State != pool.StateBusy {
		t.Fatalf("busy instance should still be there and busy: %+v", st)
	}
	if pid2 := call(t, l, ""); pid2 != pid {
		t.Fatal("instance changed under a lease")
	}
	l.Release()
	waitFor(t, "scale to zero after idle", func() bool { return len(p.Instances()) == 0 })
}

func TestStartFailureReachesTheRequest(t *testing.T) {
	p := newEnv(t).pool(pool.Options{MaxInstances: 2}, "EXIT_AT_START", "1")
	_, err := p.Acquire(context.Background())
	var re *runtime.Error
	if !errors.As(err, &re) || re.Type != "Runtime.ExitError" {
		t.Fatalf("want Runtime.ExitError, got %v", err)
	}
	if n := len(p.Instances()); n != 0 {
		t.Errorf("failed instance should not be listed, got %d", n)
	}
}

func TestConcurrencyPerInstance(t *testing.T) {
	p := newEnv(t).pool(pool.Options{MaxInstances: 1, Concurrency: 3})
	var ls []*pool.Lease
	for range 3 {
		ls = append(ls, acquire(t, p))
	}
	for _, l := range ls[1:] {
		if l.InstanceID != ls[0].InstanceID {
			t.Error("concurrency 3 should put 3 requests on one instance")
		}
	}
	if _, err := p.Acquire(context.Background()); !errors.Is(err, pool.ErrThrottled) {
		t.Errorf("4th request with queue 0: want throttled, got %v", err)
	}
	for _, l := range ls {
		l.Release()
	}
}

func TestDrainFinishesInFlightThenStops(t *testing.T) {
	p := newEnv(t).pool(pool.Options{MaxInstances: 2})
	l := acquire(t, p)
	drained := make(chan error, 1)
	go func() { drained <- p.Drain(context.Background()) }()
	waitFor(t, "draining", func() bool {
		ins := p.Instances()
		return len(ins) == 1 && ins[0].State == pool.StateDraining
	})
	if _, err := p.Acquire(context.Background()); !errors.Is(err, pool.ErrDraining) {
		t.Fatalf("acquire on a draining pool: want ErrDraining, got %v", err)
	}
	if got := call(t, l, ""); got == "" {
		t.Fatal("in-flight request failed during drain")
	}
	select {
	case <-drained:
		t.Fatal("drain returned with a request in flight")
	default:
	}
	l.Release()
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if n := len(p.Instances()); n != 0 {
		t.Errorf("drained pool still has %d instances", n)
	}
}

func TestManyConcurrentRequests(t *testing.T) {
	p := newEnv(t).pool(pool.Options{MaxInstances: 4, QueueSize: 100})
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := p.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			pid := call(t, l, "sleep=5")
			l.Release()
			mu.Lock()
			seen[pid]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(seen) > 4 {
		t.Errorf("max_instances 4 but %d instances served", len(seen))
	}
	total := 0
	for _, n := range seen {
		total += n
	}
	if total != 40 {
		t.Errorf("served %d of 40", total)
	}
}
