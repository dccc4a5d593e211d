package sandbox_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// waitStubs waits until m has n idle stubs.
func waitStubs(t testing.TB, m *sandbox.Manager, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for sandbox.IdleStubs(m) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle stubs after 10s, want %d", sandbox.IdleStubs(m), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func stubStart(t *testing.T, m *sandbox.Manager, spec sandbox.Spec) sandbox.Process {
	t.Helper()
	waitStubs(t, m, 1)
	if spec.Args == nil {
		spec.Args = []string{self(t)}
	}
	p, err := m.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if !sandbox.FromStub(p) {
		t.Fatal("not started from a stub")
	}
	return p
}

// A stub-started process is in its own cgroup, named after its id, when its
// main runs; it inherits no control socket; its env is exactly the spec's.
func TestStubPlacement(t *testing.T) {
	m := enforced(t)
	var c collector
	p := stubStart(t, m, sandbox.Spec{ID: "placed", MemoryMB: 128, Output: c.add, Env: []string{childEnv + "=cgroup"}})
	if ex := waitDone(t, p, 10*time.Second); ex.Code != 0 {
		t.Fatalf("exit %+v, output %q", ex, c.get())
	}
	want := "/stoke/" + strconv.Itoa(os.Getpid()) + "/placed"
	var got []string
	for _, l := range c.get() {
		if rest, ok := strings.CutPrefix(l, "stdout: cgroup "); ok {
			f := strings.SplitN(rest, ":", 3)
			// v1 controllers here; on a hybrid host the unified "0::" line
			// is not where the limits are, so it is checked only on pure v2.
			v2 := !strings.HasPrefix(sandbox.CgroupDirs(m, "")[0], "/sys/fs/cgroup/memory/")
			if len(f) == 3 && (f[1] == "memory" || f[1] == "cpu,cpuacct" || f[1] == "pids" || (v2 && f[1] == "")) {
				got = append(got, rest)
				if f[2] != want {
					t.Errorf("in cgroup %s, want %s", rest, want)
				}
			}
		}
		if fds, ok := strings.CutPrefix(l, "stdout: fds "); ok && strings.Contains(fds, "socket:") {
			t.Errorf("app inherited a socket: %s", fds)
		}
	}
	if len(got) == 0 {
		t.Fatalf("no memory/cpu/pids cgroup lines in %q", c.get())
	}
	assertGone(t, sandbox.CgroupDirs(m, "placed"))
}

func TestStubEnvAndDir(t *testing.T) {
	m := newManager(t, sandbox.Options{}, nil)
	dir := t.TempDir()
	var c collector
	p := stubStart(t, m, sandbox.Spec{ID: "env", Dir: dir, MemoryMB: 128, Output: c.add,
		Env: []string{childEnv + "=env", "FOO=bar baz"}})
	waitDone(t, p, 10*time.Second)
	want := []string{"stdout: FOO=bar baz", "stdout: DIR=" + dir, "stdout: N=2"}
	if got := c.get(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("output %q, want %q", got, want)
	}
}

// Failures are reported by Start with errors the runtime classifies
// (Runtime.InvalidEntrypoint), and leave nothing behind.
func TestStubBadProgram(t *testing.T) {
	m := enforced(t)
	notExec := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(notExec, []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		dir  string
		want error
	}{
		{"missing file", []string{"/nonexistent/prog"}, "", fs.ErrNotExist},
		{"not in PATH", []string{"stoke-no-such-program"}, "", exec.ErrNotFound},
		{"not executable", []string{notExec}, "", fs.ErrPermission},
		{"missing dir", []string{self(t)}, "/nonexistent/dir", fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			waitStubs(t, m, 1)
			_, err := m.Start(context.Background(), sandbox.Spec{ID: "bad", Args: tc.args, Dir: tc.dir, MemoryMB: 128})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Start error %v, want %v", err, tc.want)
			}
			t.Log(err)
			assertGone(t, sandbox.CgroupDirs(m, "bad"))
		})
	}
	// The id is free and the pool still works.
	var c collector
	p := stubStart(t, m, sandbox.Spec{ID: "bad", MemoryMB: 128, Output: c.add, Env: []string{childEnv + "=hello"}})
	if ex := waitDone(t, p, 10*time.Second); ex.Code != 0 || len(c.get()) != 1 {
		t.Fatalf("exit %+v, output %q", ex, c.get())
	}
}

// OOM and peak memory work as without stubs, and the peak does not include
// the stub's own Go runtime.
func TestStubOOMAndPeak(t *testing.T) {
	m := enforced(t)
	var c collector
	p := stubStart(t, m, sandbox.Spec{ID: "oom", MemoryMB: 128, Output: c.add,
		Env: []string{childEnv + "=alloc", "STOKE_ALLOC_MB=300"}})
	ex := waitDone(t, p, 20*time.Second)
	if !ex.OOMKilled || ex.Signal != "killed" || ex.Stopped {
		t.Errorf("exit = %+v, want OOM-killed; output %q", ex, c.get())
	}
	if mb := p.MaxMemoryMB(); mb < 100 || mb > 128 {
		t.Errorf("MaxMemoryMB = %d, want within [100,128]", mb)
	}

	var ready collector
	p = stubStart(t, m, sandbox.Spec{ID: "small", MemoryMB: 128, Output: ready.add, Env: []string{childEnv + "=readysleep"}})
	ready.waitFor(t, "stdout: ready", 1) // the child runs: the stub's exec is behind it
	small := p.MaxMemoryMB()
	if err := p.Stop(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	// A sleeping Go program is a few MB (more under -race, whose runtime
	// reserves shadow memory); the stub's own run must not be counted on top.
	if small <= 0 || small > 32 {
		t.Errorf("MaxMemoryMB of a sleeping child = %d, want (0,32]", small)
	}
}

// A running process's MaxMemoryMB follows its use: the peak file, kept open
// after the first reading, reads afresh each time (beyond the short cache).
func TestMaxMemoryFollowsRunningProcess(t *testing.T) {
	m := enforced(t)
	var c collector
	p := start(t, m, "growing", 256, c.add, childEnv+"=growsleep", "STOKE_ALLOC_MB=96")
	t.Cleanup(func() { _ = p.Stop(context.Background(), 0) })
	c.waitFor(t, "stdout: ready", 1)
	small := p.MaxMemoryMB()
	if small <= 0 || small >= 64 {
		t.Fatalf("MaxMemoryMB before allocating = %d, want (0,64)", small)
	}
	if err := syscall.Kill(p.Pid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "stdout: allocated", 1)
	deadline := time.Now().Add(10 * time.Second)
	for mb := p.MaxMemoryMB(); mb < 96; mb = p.MaxMemoryMB() {
		if time.Now().After(deadline) {
			t.Fatalf("MaxMemoryMB while running = %d after touching 96 MB (before: %d), want ≥ 96", mb, small)
		}
		time.Sleep(5 * time.Millisecond) // polling: the reading may be cached for 20 ms
	}
}

// The peak file kept open for MaxMemoryMB goes with its instance, stopped
// or exiting by itself: no descriptor outlives the cgroup it reads.
func TestPeakFileClosedWithInstance(t *testing.T) {
	m := enforced(t)
	for _, how := range []string{"stopped", "exited"} {
		t.Run(how, func(t *testing.T) {
			var c collector
			p := start(t, m, "peakfd-"+how, 128, c.add, childEnv+"=growsleep")
			t.Cleanup(func() { _ = p.Stop(context.Background(), 0) })
			c.waitFor(t, "stdout: ready", 1)
			if mb := p.MaxMemoryMB(); mb <= 0 {
				t.Fatalf("MaxMemoryMB = %d, want > 0", mb)
			}
			// Only peak files count: the stub refiller opens other files
			// of its stubs' cgroups at any moment.
			peakFiles := func() []string {
				var out []string
				for _, f := range sandboxtest.CgroupFiles() {
					if strings.HasSuffix(f, "/memory.max_usage_in_bytes") || strings.HasSuffix(f, "/memory.peak") {
						out = append(out, f)
					}
				}
				return out
			}
			if open := peakFiles(); len(open) != 1 {
				t.Fatalf("open peak files while running = %q, want the kept one", open)
			}
			if how == "stopped" {
				if err := p.Stop(context.Background(), time.Second); err != nil {
					t.Fatal(err)
				}
			} else if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			waitDone(t, p, 10*time.Second)
			if open := peakFiles(); len(open) != 0 {
				t.Fatalf("open peak files after the instance is done = %q, want none", open)
			}
			if mb := p.MaxMemoryMB(); mb <= 0 {
				t.Fatalf("MaxMemoryMB after exit = %d, want the peak read at exit", mb)
			}
		})
	}
}

// MaxMemoryMB may be cached while running, but after exit it is exact.
func TestMaxMemoryCachedThenExact(t *testing.T) {
	m := enforced(t)
	p := start(t, m, "grow", 256, nil, childEnv+"=alloc", "STOKE_ALLOC_MB=64")
	early := p.MaxMemoryMB()
	waitDone(t, p, 20*time.Second)
	if final := p.MaxMemoryMB(); final < 64 || final < early {
		t.Errorf("MaxMemoryMB after exit = %d (early %d), want ≥ 64", final, early)
	}
}

func TestStubPoolRefillsAndFallback(t *testing.T) {
	m := newManager(t, sandbox.Options{Stubs: 1}, nil)
	waitStubs(t, m, 1)
	var ps []sandbox.Process
	for i := range 3 { // the first takes the stub, the next fall back
		var c collector
		p, err := m.Start(context.Background(), sandbox.Spec{ID: "f" + strconv.Itoa(i), Args: []string{self(t)},
			MemoryMB: 128, Output: c.add, Env: []string{childEnv + "=sleep"}})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := sandbox.FromStub(p), i == 0; got != want {
			t.Errorf("start %d: from stub %v, want %v", i, got, want)
		}
		ps = append(ps, p)
	}
	waitStubs(t, m, 1)
	if m.Enforced() {
		for i := range ps {
			if _, err := os.Stat(sandbox.CgroupDirs(m, "f"+strconv.Itoa(i))[0]); err != nil {
				t.Errorf("cgroup of f%d: %v", i, err)
			}
		}
	} else {
		sandboxtest.LeftOutWithoutCgroups(t, "the instances' cgroups")
	}
	for _, p := range ps {
		if err := p.Stop(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
	}
}

// Close kills idle stubs and removes their cgroups; a stopped stub-started
// process takes its cgroup with it.
func TestStubClose(t *testing.T) {
	sandboxtest.CheckNoLeaks(t)
	m, err := sandbox.NewWithOptions(nil, sandbox.Options{Stubs: 3})
	if err != nil {
		t.Fatal(err)
	}
	waitStubs(t, m, 3)
	if kids := sandboxtest.Children(); len(kids) < 3 {
		t.Errorf("children %q, want ≥ 3 stubs", kids)
	}
	p, err := m.Start(context.Background(), sandbox.Spec{ID: "x", Args: []string{self(t)}, MemoryMB: 128,
		Env: []string{childEnv + "=sleep"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitDone(t, p, time.Second)
	if kids := sandboxtest.Children(); len(kids) != 0 {
		t.Errorf("children after Close: %q", kids)
	}
	if dirs := sandboxtest.StokeCgroups(); len(dirs) != 0 {
		t.Errorf("cgroups after Close: %q", dirs)
	}
}

// A stub is stopped before it gets to exec: Stop still ends it.
func TestStubStopRightAway(t *testing.T) {
	m := newManager(t, sandbox.Options{}, nil)
	for i := range 5 {
		p := stubStart(t, m, sandbox.Spec{ID: "quick" + strconv.Itoa(i), MemoryMB: 128, Env: []string{childEnv + "=sleep"}})
		if err := p.Stop(context.Background(), time.Second); err != nil {
			t.Fatal(err)
		}
		if ex := p.Exit(); !ex.Stopped {
			t.Errorf("exit %+v, want stopped", ex)
		}
	}
}

// A stub that never execs (here: stopped) does not hold Start past its
// context, nor past stubExecTimeout without one; it is killed and its
// cgroup removed.
func TestStubThatNeverExecs(t *testing.T) {
	m := enforced(t)
	defer sandbox.SetStubExecTimeout(2 * time.Second)()
	for _, c := range []struct {
		name    string
		timeout time.Duration // of Start's context; 0: none
		want    string
	}{
		{"ctx", 300 * time.Millisecond, "context deadline exceeded"},
		{"own-deadline", 0, "did not exec the program before its deadline"},
	} {
		t.Run(c.name, func(t *testing.T) {
			waitStubs(t, m, 1)
			pids := sandbox.StopIdleStubs(m)
			ctx := context.Background()
			if c.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.timeout)
				defer cancel()
			}
			begin := time.Now()
			_, err := m.Start(ctx, sandbox.Spec{ID: "wedged-" + c.name, Args: []string{self(t)}, MemoryMB: 128})
			took := time.Since(begin)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Start on a stopped stub: %v", err)
			}
			if took > 5*time.Second {
				t.Errorf("Start took %s", took)
			}
			for _, pid := range pids {
				// The stub Start took is gone (killed and reaped); others
				// may still be idle, stopped.
				if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
					return
				}
			}
			t.Errorf("no stopped stub was killed: %v", pids)
		})
	}
	// Stubs left stopped are killed by the Manager's Close.
	assertGone(t, sandbox.CgroupDirs(m, "wedged-ctx"))
	assertGone(t, sandbox.CgroupDirs(m, "wedged-own-deadline"))
}
