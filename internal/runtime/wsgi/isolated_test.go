package wsgirt

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// isolatedRuntime runs f as Stoke does as root: the function's own user,
// namespaces and view.
func isolatedRuntime(t *testing.T, f *config.Function, uid int, writable ...string) *Runtime {
	t.Helper()
	if os.Geteuid() != 0 {
		sandboxtest.SkipWithoutCgroups(t, "isolation needs root")
	}
	sandboxtest.CheckNoLeaks(t)
	m, err := sandbox.NewWithOptions(slog.New(slog.DiscardHandler), sandbox.Options{Isolate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	iso := &sandbox.Isolation{UID: uid, GID: uid, Code: f.Cwd, Writable: writable}
	rt := New(Options{Function: f, Version: "1", Sandbox: m, Isolation: iso, Output: (&logs{}).add})
	t.Cleanup(func() {
		if err := rt.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return rt
}

// With isolation the template is PID 1 of the PID namespace its forks
// share, so its death ends them (docs/SECURITY.md): they are gone at once,
// say why, a request handed one is not delivered (the pool tries another
// instance), and the next start makes a new template.
func TestIsolatedTemplateDeathEndsItsForks(t *testing.T) {
	f := djangoFunction(t, true)
	rt := isolatedRuntime(t, f, 200781, filepath.Dir(f.Env["STOKE_DB_PATH"]))
	a := start(t, rt, "a")
	b := start(t, rt, "b")
	if w := invoke(t, a, "GET", "/api/health", nil); w.Code != 200 {
		t.Fatalf("isolated django instance: %d %s", w.Code, w.Body)
	}
	first := rt.tpl
	if err := syscall.Kill(first.proc.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, in := range []runtime.Instance{a, b} {
		select {
		case <-in.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("instance %d outlived its isolated template by 10 s", in.Pid())
		}
		if msg := in.Err().Error(); !strings.Contains(msg, "template") {
			t.Errorf("instance's end: %s", msg)
		}
	}
	err := a.Invoke(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/health", nil))
	if nd, ok := runtime.AsNotDelivered(err); !ok {
		t.Errorf("request handed an instance of the dead template: %v, want not delivered", err)
	} else if !strings.Contains(nd.Error(), "template") {
		t.Errorf("not delivered because: %v", nd)
	}
	c := start(t, rt, "c")
	if rt.tpl == first {
		t.Fatal("no new template")
	}
	if w := invoke(t, c, "GET", "/api/health", nil); w.Code != 200 {
		t.Errorf("instance of the new template: %d %s", w.Code, w.Body)
	}
}

// In a pool, a dead isolated template's instances are removed as soon as
// they end, without making the pool failing (one template's end is not a
// failed start per instance): the next request cold-starts a new template
// and is served.
func TestIsolatedTemplateDeathInAPool(t *testing.T) {
	f := djangoFunction(t, true)
	rt := isolatedRuntime(t, f, 200782, filepath.Dir(f.Env["STOKE_DB_PATH"]))
	var mu sync.Mutex
	var exited []pool.Event
	p := pool.New(pool.Options{Runtime: rt, MaxInstances: 4, KeepWarm: 2, MinBackoff: time.Minute, MaxBackoff: time.Minute,
		Logger: slog.New(slog.DiscardHandler), Events: func(e pool.Event) {
			if e.Kind == pool.EventExited {
				mu.Lock()
				exited = append(exited, e)
				mu.Unlock()
			}
		}})
	p.Start()
	t.Cleanup(p.Close)
	idle := func() int {
		n := 0
		for _, in := range p.Instances() {
			if in.State == pool.StateIdle {
				n++
			}
		}
		return n
	}
	poll(t, "2 idle instances", func() bool { return idle() == 2 })
	rt.mu.Lock()
	tpl := rt.tpl
	rt.mu.Unlock()
	if err := syscall.Kill(tpl.proc.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	poll(t, "both instances gone", func() bool { mu.Lock(); defer mu.Unlock(); return len(exited) >= 2 })
	mu.Lock()
	for _, e := range exited[:2] {
		if pg, ok := runtime.AsParentGone(e.Err); !ok || pg.Parent != tpl.id {
			t.Errorf("instance %s ended with %v, want its template %s gone", e.Instance, e.Err, tpl.id)
		}
	}
	mu.Unlock()
	// One failure, no backoff (a second would back off for MinBackoff, a
	// minute, and answer the request below with the error at once).
	if h := p.Health(); h.Failures > 1 || !h.RetryAt.IsZero() {
		t.Errorf("one template's death counted as more than one failed start: %+v", h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := p.Acquire(ctx)
	if err != nil {
		t.Fatalf("the request after the template's death: %v", err)
	}
	defer l.Release()
	if w := invoke(t, l.Instance, "GET", "/api/health", nil); w.Code != 200 {
		t.Errorf("served by %s: %d %s", l.InstanceID, w.Code, w.Body)
	}
	if rt.tpl == tpl {
		t.Error("served without a new template")
	}
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 30 s", what)
		}
	}
}
