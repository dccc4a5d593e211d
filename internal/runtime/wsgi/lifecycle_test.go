package wsgirt

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/runtime"
)

// Fork safety against the real Django + DRF: the template opened a
// database connection during its warm-up (GET /api/notes/), with
// persistent connections on; each forked instance must open its own.
func TestDjangoForkSafety(t *testing.T) {
	f := djangoFunction(t, true)
	f.Readiness.Path = "/api/notes/"
	f.Env["DJANGO_CONN_MAX_AGE"] = "none"
	l := &logs{}
	rt := newRuntime(t, f, l)
	if err := rt.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.waitFor(t, "(GET /api/notes/, Host localhost → 200)")
	tplPid := rt.tpl.proc.Pid()
	a, b := start(t, rt, "a"), start(t, rt, "b")
	var who [2]map[string]any
	for i, in := range []runtime.Instance{a, b} {
		who[i] = decode(t, invoke(t, in, "GET", "/api/whoami", nil))
		w := who[i]
		pid := int(w["pid"].(float64))
		if pid != in.Pid() || int(w["ppid"].(float64)) != tplPid {
			t.Errorf("instance %d: whoami %v; want pid %d forked from the template %d", i, w, in.Pid(), tplPid)
		}
		if opened, _ := w["db_opened_by_pid"].(float64); int(opened) != pid {
			t.Errorf("instance %d (pid %d) uses a database connection opened by pid %v", i, pid, w["db_opened_by_pid"])
		}
	}
	if who[0]["random"] == who[1]["random"] {
		t.Errorf("both instances drew random %v", who[0]["random"])
	}
	// They share the database file, not the connection.
	req := httptest.NewRequest("POST", "/api/notes/", strings.NewReader(`{"title":"from a","body":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	if err := a.Invoke(w, req); err != nil || w.Code != 201 {
		t.Fatalf("create: %v %d %s", err, w.Code, w.Body)
	}
	if w := invoke(t, b, "GET", "/api/notes/", nil); !strings.Contains(w.Body.String(), `"from a"`) {
		t.Errorf("b does not see a's note: %s", w.Body)
	}
}

func TestDjangoPlainInstance(t *testing.T) {
	rt := newRuntime(t, djangoFunction(t, false), nil)
	if err := rt.Prepare(context.Background()); err != nil || rt.tpl != nil {
		t.Fatalf("plain mode prepared a template (%v)", err)
	}
	in := start(t, rt, "plain")
	w := decode(t, invoke(t, in, "GET", "/api/whoami", nil))
	if int(w["pid"].(float64)) != in.Pid() {
		t.Errorf("whoami pid %v, instance pid %d", w["pid"], in.Pid())
	}
	if w := invoke(t, in, "GET", "/api/notes/", nil); w.Code != 200 || w.Body.String() != "[]" {
		t.Errorf("notes: %d %s", w.Code, w.Body)
	}
}

func initErr(t *testing.T, err error, typ string, contains ...string) {
	t.Helper()
	var re *runtime.Error
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T), want a *runtime.Error of type %s", err, err, typ)
	}
	if re.Type != typ {
		t.Errorf("error type %s, want %s: %s", re.Type, typ, re.Message)
	}
	for _, s := range contains {
		if !strings.Contains(re.Message, s) {
			t.Errorf("error message lacks %q:\n%s", s, re.Message)
		}
	}
}

// brokenDjango copies examples/django-drf with settings that fail.
func brokenDjango(t *testing.T, settings string) string {
	dir := t.TempDir()
	src := mustAbs(t, "../../../examples/django-drf")
	if out, err := exec.Command("cp", "-r", src+"/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "mysite", "broken_settings.py"), []byte(settings), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestInitErrors(t *testing.T) {
	cases := []struct {
		name    string
		fn      func(t *testing.T) *config.Function
		typ     string
		message []string
	}{
		{"import fails", func(t *testing.T) *config.Function {
			f := testFunction(t, "app:app", true)
			f.Env["APP_FAIL_IMPORT"] = "no database"
			return f
		}, "Runtime.ImportModuleError", []string{"RuntimeError: broken at import: no database", "Traceback (most recent call last)", `app.py", line`}},
		{"no such module", func(t *testing.T) *config.Function {
			return testFunction(t, "nosuchmodule:app", true)
		}, "Runtime.ImportModuleError", []string{"ModuleNotFoundError: No module named 'nosuchmodule'", "(python: " + python + " 3."}},
		{"not callable", func(t *testing.T) *config.Function {
			return testFunction(t, "app:notcallable", true)
		}, "Runtime.HandlerNotFound", []string{"app:notcallable is not callable"}},
		{"no such callable", func(t *testing.T) *config.Function {
			return testFunction(t, "app:nothing", true)
		}, "Runtime.HandlerNotFound", []string{"has no attribute 'nothing'"}},
		{"django settings missing", func(t *testing.T) *config.Function {
			f := djangoFunction(t, true)
			f.Python.DjangoSettings = "mysite.nosettings"
			return f
		}, "Runtime.ImportModuleError", []string{"No module named 'mysite.nosettings'"}},
		{"django settings broken", func(t *testing.T) *config.Function {
			f := djangoFunction(t, true)
			f.Cwd = brokenDjango(t, "from mysite.settings import *\nINSTALLED_APPS = INSTALLED_APPS + ['no_such_app']\n")
			f.Python.DjangoSettings = "mysite.broken_settings"
			return f
		}, "Runtime.ImportModuleError", []string{"No module named 'no_such_app'", "Traceback"}},
		{"after-fork hook fails", func(t *testing.T) *config.Function {
			f := testFunction(t, "app:app", true)
			f.Env["APP_FAIL_HOOK"] = "1"
			return f
		}, "Runtime.InitError", []string{"RuntimeError: after-fork hook failed on purpose", "in stoke_after_fork"}},
		{"warm-up unhealthy", func(t *testing.T) *config.Function {
			f := testFunction(t, "app:app", true)
			f.Readiness.Path = "/nope"
			f.Readiness.StatusMin, f.Readiness.StatusMax = 200, 299
			return f
		}, "Runtime.InitError", []string{"warm-up request GET /nope (Host: localhost) answered 404 Not Found; healthy is 200-299", "(python: " + python + " 3."}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := c.fn(t)
			if c.name == "after-fork hook fails" {
				l := &logs{}
				rt := newRuntime(t, f, l)
				_, err := rt.Start(context.Background(), "hooked")
				initErr(t, err, c.typ, c.message...)
				l.waitFor(t, "hooked stderr: Traceback (most recent call last):")
				return
			}
			l := &logs{}
			rt := newRuntime(t, f, l)
			err := rt.Prepare(context.Background())
			initErr(t, err, c.typ, c.message...)
			l.waitFor(t, c.message[0]) // the log has it too
			// Without a snapshot the instance reports the same.
			f.Python.Snapshot = false
			if c.name == "warm-up unhealthy" {
				return // plain instances have no warm-up request
			}
			_, err = rt.Start(context.Background(), "plain")
			initErr(t, err, c.typ, c.message...)
		})
	}
}

func TestTemplateDiesAndIsRebuilt(t *testing.T) {
	l := &logs{}
	rt := newRuntime(t, testFunction(t, "app:app", true), l)
	a := start(t, rt, "a")
	first := rt.tpl
	if err := syscall.Kill(first.proc.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.dead
	// The forked instance lives on in its own sandbox.
	if w := invoke(t, a, "GET", "/", nil); w.Code != 200 {
		t.Errorf("instance after its template died: %d", w.Code)
	}
	// Nobody reports how it ends now, and nothing waits for that report.
	err := a.Invoke(httptest.NewRecorder(), httptest.NewRequest("GET", "/exit", nil))
	initErr(t, err, "Runtime.ExitError", "its parent did not report it")
	b := start(t, rt, "b")
	if rt.tpl == first || rt.tpl.id == first.id || !strings.Contains(rt.tpl.id, "-template-") {
		t.Errorf("template after the death: %s", rt.tpl.id)
	}
	if w := invoke(t, b, "GET", "/", nil); w.Code != 200 {
		t.Errorf("instance of the new template: %d", w.Code)
	}
}

// A template that reports a fork's exit late (stopped here, as a loaded
// machine may leave it unscheduled) still gives the fork's exit its status.
func TestForkExitStatusFromSlowTemplate(t *testing.T) {
	rt := newRuntime(t, testFunction(t, "app:app", true), nil)
	in := start(t, rt, "slow")
	tpl := rt.tpl.proc.Pid()
	if err := syscall.Kill(tpl, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resume := time.AfterFunc(1500*time.Millisecond, func() { _ = syscall.Kill(tpl, syscall.SIGCONT) })
	t.Cleanup(func() { resume.Stop(); _ = syscall.Kill(tpl, syscall.SIGCONT) })
	err := in.Invoke(httptest.NewRecorder(), httptest.NewRequest("GET", "/exit", nil))
	initErr(t, err, "Runtime.ExitError", "exit status 3")
}

func TestForkedInstanceMemoryLimit(t *testing.T) {
	f := testFunction(t, "app:app", true)
	f.Memory = 128
	rt := newRuntime(t, f, nil)
	in := start(t, rt, "oom")
	w := invoke(t, in, "GET", "/alloc?mb=40", nil)
	if w.Code != 200 {
		t.Fatalf("40 MB: %d", w.Code)
	}
	err := in.Invoke(httptest.NewRecorder(), httptest.NewRequest("GET", "/alloc?mb=300", nil))
	initErr(t, err, "Runtime.OutOfMemory", "exceeded its memory limit of 128 MB")
	select {
	case <-in.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the OOM-killed instance is not done")
	}
	// The peak can pass the limit by a few pages (the kernel's own
	// allocations on the way to the OOM kill), and MaxMemoryMB rounds up.
	if mb := in.MaxMemoryMB(); mb < 100 || mb > 128 {
		t.Errorf("max memory %d MB, want about the 128 MB limit", mb)
	}
	// The next instance is fine.
	if w := invoke(t, start(t, rt, "next"), "GET", "/", nil); w.Code != 200 {
		t.Errorf("next instance: %d", w.Code)
	}
}

// A template whose app fills most of its memory still forks as many
// instances as asked: each fork's page tables and the pages it writes
// before adoption are charged to the template's cgroup, whose limit grows
// with the live forks (forkAllowanceMB each). A 128 MB Django template
// died at its fiftieth fork without it.
func TestTemplateForksBeyondItsMemory(t *testing.T) {
	f := testFunction(t, "app:app", true)
	f.Memory = 128
	f.Env = map[string]string{"APP_BALLAST_MB": "96"}
	rt := newRuntime(t, f, nil)
	first := start(t, rt, "i0")
	tpl := rt.tpl
	ins := []runtime.Instance{first}
	for i := 1; i < 24; i++ {
		ins = append(ins, start(t, rt, fmt.Sprintf("i%d", i)))
	}
	select {
	case <-tpl.dead:
		t.Fatalf("the template died: %s", runtime.ExitError(tpl.proc.Exit(), f.Memory, "").Message)
	default:
	}
	if rt.tpl != tpl {
		t.Fatalf("the template was replaced (%s → %s)", tpl.id, rt.tpl.id)
	}
	for _, in := range ins {
		if w := invoke(t, in, "GET", "/", nil); w.Code != 200 {
			t.Fatalf("instance: %d", w.Code)
		}
	}
}

func TestInitBoost(t *testing.T) {
	for _, boost := range []bool{true, false} {
		t.Run(fmt.Sprint("boost=", boost), func(t *testing.T) {
			f := testFunction(t, "app:app", true)
			f.Memory, f.InitBoost = 128, boost
			// Long enough that only the first request's end can end it.
			firstRequestBoost = time.Hour
			t.Cleanup(func() { firstRequestBoost = time.Second })
			rt := newRuntime(t, f, nil)
			in := start(t, rt, "i")
			// Once ready, the quota applies without the boost; with it,
			// after the first request.
			want := fmt.Sprint(100000 * 128 / 1769)
			if q := cpuQuota(t, in.Pid()); (boost && q != "-1" && q != "max") || (!boost && q != want) {
				t.Errorf("quota %s once ready with boost %t", q, boost)
			}
			// With the boost the instance repeats the warm-up request
			// during its init; without, only the template served it.
			w := decode(t, invoke(t, in, "GET", "/whoami", nil))
			if n := len(w["warmups"].([]any)); (boost && n != 2) || (!boost && n != 1) {
				t.Errorf("warm-ups %v with boost %t", w["warmups"], boost)
			}
			// Applied after the response, on the boost timer's goroutine.
			poll(t, "the quota after the first request", func() bool { return cpuQuota(t, in.Pid()) == want })
			// From a spare, ready before the claim: the same.
			if err := rt.Prepare(context.Background()); err != nil {
				t.Fatal(err)
			}
			sp := waitSpares(t, rt, 1)[0]
			<-sp.ready
			if q := cpuQuota(t, sp.proc.Pid()); q != want {
				t.Errorf("quota %s of a ready spare, want %s", q, want)
			}
			in = start(t, rt, "j")
			if in.Pid() != sp.proc.Pid() {
				t.Fatalf("instance %d, want the spare %d", in.Pid(), sp.proc.Pid())
			}
			if q := cpuQuota(t, in.Pid()); (boost && q != "-1" && q != "max") || (!boost && q != want) {
				t.Errorf("quota %s of a claimed spare with boost %t", q, boost)
			}
			invoke(t, in, "GET", "/", nil)
			poll(t, "the quota after a claimed spare's first request", func() bool { return cpuQuota(t, in.Pid()) == want })
			// One no request comes to (keep_warm) gets its quota anyway,
			// firstRequestBoost after it was ready.
			firstRequestBoost = 50 * time.Millisecond
			idle := start(t, rt, "k")
			poll(t, "the quota of an instance never invoked", func() bool { return cpuQuota(t, idle.Pid()) == want })
		})
	}
}

// cpuQuota reads the v1 cpu.cfs_quota_us (or v2 cpu.max) of pid's cgroup.
func cpuQuota(t *testing.T, pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && (strings.Contains(parts[1], "cpu,") || parts[1] == "cpu" || strings.HasSuffix(parts[1], ",cpu")) {
			q, err := os.ReadFile("/sys/fs/cgroup/cpu" + parts[2] + "/cpu.cfs_quota_us")
			if err == nil {
				return strings.TrimSpace(string(q))
			}
			q, err = os.ReadFile("/sys/fs/cgroup/cpu,cpuacct" + parts[2] + "/cpu.cfs_quota_us")
			if err == nil {
				return strings.TrimSpace(string(q))
			}
		}
		if len(parts) == 3 && parts[0] == "0" {
			if q, err := os.ReadFile("/sys/fs/cgroup" + parts[2] + "/cpu.max"); err == nil {
				return strings.Fields(string(q))[0]
			}
		}
	}
	t.Fatalf("no cpu cgroup for %d in\n%s", pid, b)
	return ""
}

func waitSpares(t *testing.T, rt *Runtime, n int) []*spare {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		rt.mu.Lock()
		sp := append([]*spare(nil), rt.spares...)
		rt.mu.Unlock()
		if len(sp) == n {
			return sp
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d spares, want %d", len(sp), n)
		}
	}
}

// A cold start claims the spare fork (already in its cgroup), and a new
// spare replaces it; a spare that died is skipped.
func TestSpareFork(t *testing.T) {
	l := &logs{}
	rt := newRuntime(t, testFunction(t, "app:app", true), l)
	if err := rt.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := waitSpares(t, rt, 1)[0]
	a := start(t, rt, "a")
	if a.Pid() != first.proc.Pid() {
		t.Errorf("instance pid %d, want the spare's %d", a.Pid(), first.proc.Pid())
	}
	w := decode(t, invoke(t, a, "GET", "/whoami", nil))
	if int(w["pid"].(float64)) != a.Pid() || w["hooked_in"] != w["pid"] {
		t.Errorf("whoami %v from instance %d", w, a.Pid())
	}
	// Its own id and log stream, not the template's or the spare's.
	if w["instance_id"] != "a" || !strings.HasSuffix(w["log_stream"].(string), "]"+streamSuffix("a")) {
		t.Errorf("instance env: id %v, log stream %v", w["instance_id"], w["log_stream"])
	}
	invoke(t, a, "GET", "/log", nil)
	l.waitFor(t, "a stdout: hello from the app") // a claimed spare's output is the instance's
	second := waitSpares(t, rt, 1)[0]
	if second == first {
		t.Fatal("the claimed spare is still listed")
	}
	// A dead spare is not handed out.
	if err := syscall.Kill(second.proc.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-second.proc.Done()
	b := start(t, rt, "b")
	if b.Pid() == second.proc.Pid() {
		t.Error("a dead spare was claimed")
	}
	if w := invoke(t, b, "GET", "/", nil); w.Code != 200 {
		t.Errorf("instance after a dead spare: %d", w.Code)
	}
	// Closing the runtime stops the live spare: quietly, as a clean stop.
	third := waitSpares(t, rt, 1)[0]
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-third.proc.Done()
	if strings.Contains(l.String(), "Traceback") || strings.Contains(l.String(), "EOFError") {
		t.Errorf("a stopped spare printed a traceback:\n%s", l)
	}
}

// A spare does its after-fork work (the hook and, with init boost, the
// warm-up request) as soon as it is in its cgroup, ahead of demand; a
// cold start that claims it during that work waits for it, is handed an
// instance under its own id, and its init covers that work.
func TestSpareWarmsAheadOfDemand(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "go")
	f := testFunction(t, "app:app", true)
	f.Memory = 128
	f.Env["APP_HOOK_WAITS_FOR"] = gate
	rt := newRuntime(t, f, nil)
	if err := rt.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := waitSpares(t, rt, 1)[0]
	type started struct {
		in  runtime.Instance
		err error
	}
	got := make(chan started, 1)
	t0 := time.Now()
	go func() {
		in, err := rt.Start(context.Background(), "a")
		got <- started{in, err}
	}()
	// Claimed, and held by the spare's hook: the start waits for it.
	poll(t, "the spare claimed", func() bool {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		return !slices.Contains(rt.spares, first)
	})
	select {
	case s := <-got:
		t.Fatalf("the start returned (%v) before the spare's hook ended", s.err)
	default:
	}
	held := time.Since(t0)
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := <-got
	if s.err != nil {
		t.Fatal(s.err)
	}
	a := s.in
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	if a.Pid() != first.proc.Pid() {
		t.Errorf("instance pid %d, want the spare's %d", a.Pid(), first.proc.Pid())
	}
	if init := a.(*Instance).Init; init < held {
		t.Errorf("init %s does not cover the spare's after-fork work (the start was held %s)", init, held)
	}
	w := decode(t, invoke(t, a, "GET", "/whoami", nil))
	pid := float64(a.Pid())
	if w["hooked_in"] != pid || !slices.Contains(w["warmups"].([]any), any(pid)) {
		t.Errorf("whoami %v: the hook and the warm-up did not run in the instance %d", w, a.Pid())
	}
	// The hook ran before the claim named it; the requests see its own id.
	if w["hook_saw_id"] != first.id || w["instance_id"] != "a" || !strings.HasSuffix(w["log_stream"].(string), "]"+streamSuffix("a")) {
		t.Errorf("hook saw id %v; instance id %v, log stream %v", w["hook_saw_id"], w["instance_id"], w["log_stream"])
	}
	// The next spare is ready before any claim: quota applied, work done.
	next := waitSpares(t, rt, 1)[0]
	<-next.ready
	if next.err != nil {
		t.Fatal(next.err)
	}
	if q, want := cpuQuota(t, next.proc.Pid()), fmt.Sprint(100000*128/1769); q != want {
		t.Errorf("a ready spare's quota is %s, want %s", q, want)
	}
	b := start(t, rt, "b")
	if b.Pid() != next.proc.Pid() {
		t.Errorf("instance pid %d, want the ready spare's %d", b.Pid(), next.proc.Pid())
	}
	if w := decode(t, invoke(t, b, "GET", "/whoami", nil)); w["instance_id"] != "b" || w["hooked_in"] != float64(b.Pid()) {
		t.Errorf("whoami %v from instance %d", w, b.Pid())
	}
}

// A spare whose after-fork work fails is dropped (nobody claimed it); the
// next cold start forks and fails with the app's error itself.
func TestSpareFailingItsInit(t *testing.T) {
	l := &logs{}
	f := testFunction(t, "app:app", true)
	f.Env["APP_FAIL_HOOK"] = "1"
	rt := newRuntime(t, f, l)
	if err := rt.Prepare(context.Background()); err != nil {
		t.Fatal(err) // the template imports fine; only its forks fail
	}
	l.waitFor(t, "-spare-")
	poll(t, "the failed spare dropped", func() bool {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		return len(rt.spares) == 0 && !rt.filling
	})
	_, err := rt.Start(context.Background(), "hooked")
	initErr(t, err, "Runtime.InitError", "RuntimeError: after-fork hook failed on purpose", "in stoke_after_fork")
}

// streamSuffix is the end of AWS_LAMBDA_LOG_STREAM_NAME for instance id.
func streamSuffix(id string) string {
	name := runtime.LogStreamName("1", id, time.Now())
	return name[strings.IndexByte(name, ']')+1:]
}

// A template that never forks (stopped here; wedged in the kernel or
// descheduled for good in life) fails a cold start within init_timeout as
// an init error, instead of holding the start, and the pool behind it,
// for ever. Spares forked before it stopped still serve.
func TestStoppedTemplateFailsTheStart(t *testing.T) {
	f := testFunction(t, "app:app", true)
	f.InitTimeout = 2 * time.Second
	rt := newRuntime(t, f, nil)
	if err := rt.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	start(t, rt, "before")
	spares := len(waitSpares(t, rt, wantSpares))
	tpl := rt.tpl.proc.Pid()
	if err := syscall.Kill(tpl, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(tpl, syscall.SIGCONT) })
	for i := range spares {
		start(t, rt, fmt.Sprintf("spare-%d", i))
	}
	begin := time.Now()
	in, err := rt.Start(context.Background(), "wedged")
	took := time.Since(begin)
	// Resumed before the instances' cleanups: their exit statuses come
	// from the template.
	_ = syscall.Kill(tpl, syscall.SIGCONT)
	if err == nil {
		_ = in.Stop(context.Background())
		t.Fatal("a stopped template forked an instance")
	}
	initErr(t, err, "Runtime.InitError", "did not fork an instance within 2s")
	if took < f.InitTimeout || took > f.InitTimeout+3*time.Second {
		t.Errorf("the start failed after %s; init_timeout is %s", took, f.InitTimeout)
	}
}
