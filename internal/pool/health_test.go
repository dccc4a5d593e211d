package pool_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/runtime"
)

// events records a pool's lifecycle events with their times.
type events struct {
	mu sync.Mutex
	ev []pool.Event
	at []time.Time
}

func (e *events) add(ev pool.Event) {
	e.mu.Lock()
	e.ev, e.at = append(e.ev, ev), append(e.at, time.Now())
	e.mu.Unlock()
}

// failures returns when each failed start was reported.
func (e *events) failures() []time.Time { return e.of(pool.EventStartFailed) }

func (e *events) of(kind pool.EventKind) []time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []time.Time
	for i, ev := range e.ev {
		if ev.Kind == kind {
			out = append(out, e.at[i])
		}
	}
	return out
}

// A keep_warm instance that cannot start is retried at once, then after a
// backoff that doubles up to its cap; meanwhile the pool says it is failing
// and a request gets the init error at once instead of waiting.
func TestCrashLoopBacksOff(t *testing.T) {
	var ev events
	p := newEnv(t).pool(pool.Options{MaxInstances: 2, KeepWarm: 1, MinBackoff: 100 * time.Millisecond,
		MaxBackoff: 400 * time.Millisecond, Events: ev.add}, "EXIT_AT_START", "1")
	waitFor(t, "6 failed starts", func() bool { return len(ev.failures()) >= 6 })
	f := ev.failures()
	// Gaps: the retry at once, then ≥100, 200, 400, 400 ms (capped). A
	// start of this app takes a few ms, so each gap is at least its backoff;
	// how much more depends on the machine's load, so the sequence itself
	// (the doubling and the cap) is checked exactly in TestBackoffSequence.
	for i, want := range []time.Duration{0, 100, 200, 400, 400} {
		gap := f[i+1].Sub(f[i])
		if gap < want*time.Millisecond {
			t.Errorf("gap %d: %s, want at least %d ms", i+1, gap, want)
		}
	}
	// The wait in progress is never longer than the cap.
	waitFor(t, "a backoff in progress", func() bool { return !p.Health().RetryAt.IsZero() })
	if at := p.Health().RetryAt; time.Until(at) > 400*time.Millisecond {
		t.Errorf("next start in %s, past the 400 ms cap", time.Until(at))
	}
	h := p.Health()
	if !h.Failing || h.Failures < 6 || !strings.Contains(h.LastError, "cannot start: config missing") || h.Since.IsZero() {
		t.Errorf("health: %+v", h)
	}
	// A request finds no instance and the pool backing off: the init
	// error, at once.
	waitFor(t, "a backoff in progress", func() bool { return !p.Health().RetryAt.IsZero() })
	begin := time.Now()
	_, err := p.Acquire(context.Background())
	var re *runtime.Error
	if !errors.As(err, &re) || re.Type != "Runtime.ExitError" || !strings.Contains(re.Message, "failing since") {
		t.Fatalf("acquire while failing: %v", err)
	}
	if took := time.Since(begin); took > 50*time.Millisecond {
		t.Errorf("a failing function's request took %s to fail", took)
	}
	// A deploy resets the backoff: the next start is at once.
	n := len(ev.failures())
	p.ResetBackoff()
	if h := p.Health(); h.Failing || h.Failures != 0 {
		t.Errorf("after ResetBackoff: %+v", h)
	}
	waitFor(t, "a start at once after the reset", func() bool { return len(ev.failures()) > n })
}

// One failed start is retried before the request waiting on it sees
// anything: it gets an instance.
func TestFirstStartFailureIsRetried(t *testing.T) {
	once := filepath.Join(t.TempDir(), "failed-once")
	var ev events
	p := newEnv(t).pool(pool.Options{MaxInstances: 1, Events: ev.add}, "FAIL_ONCE", once)
	l := acquire(t, p)
	if !l.Cold {
		t.Error("the request waited for an init: cold")
	}
	call(t, l, "")
	l.Release()
	if n := len(ev.failures()); n != 1 {
		t.Errorf("%d failed starts, want 1", n)
	}
	if h := p.Health(); h.Failing || h.Failures != 0 {
		t.Errorf("a served request ends the failures: %+v", h)
	}
}

// A crash loop that stops (the app fixed) ends at the first invocation
// served: the pool is no longer failing, its count of failed starts is 0,
// and requests are served, not answered with the old init error.
func TestFirstSuccessEndsTheFailing(t *testing.T) {
	fixed := filepath.Join(t.TempDir(), "fixed")
	var ev events
	p := newEnv(t).pool(pool.Options{MaxInstances: 1, KeepWarm: 1, MinBackoff: 100 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond, Events: ev.add}, "FAIL_UNTIL", fixed)
	waitFor(t, "failing", func() bool { h := p.Health(); return h.Failing && h.Failures >= 3 })
	if err := os.WriteFile(fixed, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a ready instance", func() bool {
		for _, in := range p.Instances() {
			if in.State == pool.StateIdle {
				return true
			}
		}
		return false
	})
	l := acquire(t, p)
	call(t, l, "")
	l.Release()
	if h := p.Health(); h.Failing || h.Failures != 0 || !h.RetryAt.IsZero() {
		t.Errorf("health after an invocation served: %+v", h)
	}
	n := len(ev.failures())
	for range 5 {
		l := acquire(t, p)
		call(t, l, "")
		l.Release()
	}
	if m := len(ev.failures()); m != n {
		t.Errorf("%d failed starts after the fix", m-n)
	}
}

// An instance that is ready and then exits without serving counts as a
// failed start: keep_warm replaces it after a backoff, not in a tight loop.
func TestReadyThenGoneBacksOff(t *testing.T) {
	var ev events
	p := newEnv(t).pool(pool.Options{MaxInstances: 1, KeepWarm: 1, MinBackoff: 300 * time.Millisecond,
		MaxBackoff: time.Second, Events: ev.add}, "EXIT_AFTER_MS", "30")
	waitFor(t, "3 young exits", func() bool { return len(ev.of(pool.EventExited)) >= 3 })
	f := ev.of(pool.EventExited)
	if gap := f[2].Sub(f[1]); gap < 300*time.Millisecond {
		t.Errorf("the second replacement came %s after the first failure, want a 300 ms backoff", gap)
	}
	if h := p.Health(); h.Failures < 3 || !strings.Contains(h.LastError, "after it was ready, before serving") {
		t.Errorf("health: %+v", h)
	}
}

// MarkFailing (a runtime's Prepare failed) makes the pool failing at once.
func TestMarkFailing(t *testing.T) {
	p := newEnv(t).pool(pool.Options{MaxInstances: 1, MinBackoff: time.Minute})
	p.MarkFailing(runtime.Errorf("Runtime.InitError", 502, "the app did not import"))
	h := p.Health()
	if !h.Failing || h.RetryAt.IsZero() || h.LastError != "Runtime.InitError: the app did not import" {
		t.Fatalf("health: %+v", h)
	}
	if _, err := p.Acquire(context.Background()); err == nil || !strings.Contains(err.Error(), "the app did not import") {
		t.Fatalf("acquire: %v", err)
	}
}

// The backoff doubles from the minimum at the second failure in a row and
// stops at the maximum, even when the doubling would overflow.
func TestBackoffSequence(t *testing.T) {
	lo, hi := 100*time.Millisecond, 400*time.Millisecond
	for failures, want := range map[int]time.Duration{2: 100 * time.Millisecond, 3: 200 * time.Millisecond,
		4: 400 * time.Millisecond, 5: 400 * time.Millisecond, 40: 400 * time.Millisecond, 100: 400 * time.Millisecond} {
		if got := pool.Backoff(failures, lo, hi); got != want {
			t.Errorf("after %d failures: %s, want %s", failures, got, want)
		}
	}
	if got := pool.Backoff(3, time.Second, 5*time.Minute); got != 2*time.Second {
		t.Errorf("defaults, 3 failures: %s, want 2s", got)
	}
}
