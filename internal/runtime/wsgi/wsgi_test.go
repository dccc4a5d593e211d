package wsgirt

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// python is Debian's interpreter, which has python3-django and
// python3-djangorestframework (.ci/run installs them).
const python = "/usr/bin/python3"

func TestMain(m *testing.M) {
	sandbox.MaybeRunStub()
	sandboxtest.InOwnMountNamespace()
	os.Exit(m.Run())
}

func newManager(t testing.TB) *sandbox.Manager {
	sandboxtest.CheckNoLeaks(t)
	m, err := sandbox.New(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return m
}

// logs collects every output line, by instance.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) add(id, stream, line string) {
	l.mu.Lock()
	l.lines = append(l.lines, id+" "+stream+": "+line)
	l.mu.Unlock()
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func (l *logs) waitFor(t testing.TB, s string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if strings.Contains(l.String(), s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", s, l)
		}
	}
}

func testFunction(t testing.TB, handler string, snapshot bool) *config.Function {
	return &config.Function{
		Name: "app", Runtime: "python-wsgi", Cwd: mustAbs(t, "testdata"), Env: map[string]string{},
		Memory: 256, Timeout: 10 * time.Second, Concurrency: 1, InitTimeout: 20 * time.Second, InitBoost: true,
		Readiness: config.Readiness{Protocol: "http", Path: "/", StatusMin: 100, StatusMax: 499},
		Python:    config.Python{Handler: handler, Interpreter: python, Snapshot: snapshot},
	}
}

func djangoFunction(t testing.TB, snapshot bool) *config.Function {
	f := testFunction(t, "", snapshot)
	f.Cwd = mustAbs(t, "../../../examples/django-drf")
	f.Python = config.Python{DjangoSettings: "mysite.settings", Interpreter: python, Snapshot: snapshot}
	f.Readiness.Path = "/api/health"
	f.Env["STOKE_DB_PATH"] = filepath.Join(t.TempDir(), "db.sqlite3")
	cmd := exec.Command(python, "manage.py", "migrate", "--noinput")
	cmd.Dir, cmd.Env = f.Cwd, append(os.Environ(), "STOKE_DB_PATH="+f.Env["STOKE_DB_PATH"])
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	return f
}

func mustAbs(t testing.TB, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newRuntime(t testing.TB, f *config.Function, l *logs) *Runtime {
	m := newManager(t)
	if l == nil {
		l = &logs{}
	}
	rt := New(Options{Function: f, Version: "1", Sandbox: m, Output: l.add})
	t.Cleanup(func() {
		if err := rt.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return rt
}

func start(t testing.TB, rt *Runtime, id string) runtime.Instance {
	t.Helper()
	in, err := rt.Start(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Stop(context.Background()) })
	return in
}

func invoke(t testing.TB, in runtime.Instance, method, target string, body io.Reader) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	if err := in.Invoke(w, httptest.NewRequest(method, target, body)); err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return w
}

func decode(t testing.TB, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("%d %q: %v", w.Code, w.Body.String(), err)
	}
	return m
}

func TestForkedInstancesShareTheWarmTemplate(t *testing.T) {
	l := &logs{}
	rt := newRuntime(t, testFunction(t, "app:app", true), l)
	if err := rt.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.waitFor(t, "TEMPLATE "+rt.tpl.id+" ready: import and warm-up")
	a, b := start(t, rt, "a"), start(t, rt, "b")
	wa, wb := decode(t, invoke(t, a, "GET", "/whoami", nil)), decode(t, invoke(t, b, "GET", "/whoami", nil))
	tplPid := rt.tpl.proc.Pid()
	for _, w := range []map[string]any{wa, wb} {
		// Warmed up in the template before the fork, and again in the
		// instance while it had init boost.
		if want := fmt.Sprint([]any{float64(tplPid), w["pid"]}); int(w["imported_in"].(float64)) != tplPid || fmt.Sprint(w["warmups"]) != want {
			t.Errorf("instance %v: imported in %v, warm-ups in %v; want imported in the template %d, warm-ups %s", w["pid"], w["imported_in"], w["warmups"], tplPid, want)
		}
		if w["hooked_in"] != w["pid"] {
			t.Errorf("instance %v: the after-fork hook ran in %v", w["pid"], w["hooked_in"])
		}
		if w["requests"].(float64) != 3 {
			t.Errorf("instance %v counts %v requests, want 3 (the template's warm-up, its own under init boost, this one)", w["pid"], w["requests"])
		}
	}
	if wa["pid"] == wb["pid"] || int(wa["pid"].(float64)) != a.Pid() || int(wb["pid"].(float64)) != b.Pid() {
		t.Errorf("pids: %v and %v, instances %d and %d", wa["pid"], wb["pid"], a.Pid(), b.Pid())
	}
	if wa["random"] == wb["random"] {
		t.Errorf("both forks drew the same random number %v", wa["random"])
	}
	if d := a.InitDuration(); d <= 0 || d > 5*time.Second {
		t.Errorf("init duration %v", d)
	}
	t.Logf("fork → ready: %v and %v", a.InitDuration(), b.InitDuration())
}
