package sandbox_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/sandbox"
)

// waitPrepared waits until m has n prepared stubs and returns their pids.
func waitPrepared(t testing.TB, m *sandbox.Manager, n int) []int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := sandbox.PreparedStubs(m)
		if len(pids) == n {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d prepared stubs after 10s, want %d", len(pids), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// After a start, a stub is prepared for the same config: its cgroup has
// the limits already, and it is still the stub (this binary, waiting), not
// the function's program, with no output. The next start of that config
// is that very process, in a cgroup named after the instance; another
// memory size is not.
func TestPreparedStubRunsNothingBeforeItsStart(t *testing.T) {
	m := enforced(t)
	spec := func(id string, mb int, c *collector) sandbox.Spec {
		return sandbox.Spec{ID: id, Args: []string{self(t)}, MemoryMB: mb, Output: c.add, Env: []string{childEnv + "=cgroup"}}
	}
	var c1 collector
	p1 := stubStart(t, m, spec("first", 128, &c1))
	if sandbox.FromPrepared(p1) {
		t.Fatal("the first start used a prepared stub")
	}
	waitDone(t, p1, 10*time.Second)

	pid := waitPrepared(t, m, 1)[0]
	dir := sandbox.PreparedCgroup(m, pid)
	if got := readFile(t, filepath.Join(dir, "memory.limit_in_bytes")); got != strconv.Itoa(128<<20) {
		t.Errorf("prepared stub's memory limit %s, want %d", got, 128<<20)
	}
	if got := readFile(t, filepath.Join(strings.Replace(dir, "/memory/", "/cpu/", 1), "cpu.cfs_quota_us")); got == "-1" {
		t.Error("prepared stub has no CPU quota")
	}
	// Still the stub: this test binary, in the stub's environment, with
	// nothing of the instance (its env) and nothing written.
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		t.Fatal(err)
	}
	if self := self(t); exe != self {
		t.Errorf("prepared stub runs %s, want the stub (%s)", exe, self)
	}
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(env), childEnv) {
		t.Errorf("prepared stub has the instance's environment: %q", env)
	}

	var c2 collector
	p2 := stubStart(t, m, spec("second", 128, &c2))
	if !sandbox.FromPrepared(p2) || p2.Pid() != pid {
		t.Fatalf("second start: prepared %v, pid %d, want the prepared stub %d", sandbox.FromPrepared(p2), p2.Pid(), pid)
	}
	if ex := waitDone(t, p2, 10*time.Second); ex.Code != 0 {
		t.Fatalf("exit %+v, output %q", ex, c2.get())
	}
	want := "/stoke/" + strconv.Itoa(os.Getpid()) + "/second"
	if out := strings.Join(c2.get(), "\n"); !strings.Contains(out, ":memory:"+want) {
		t.Errorf("not in its own renamed cgroup %s: %q", want, out)
	}

	// Another size: not the stub prepared for 128 MB (which the start
	// above used; its replacement is prepared for 128 MB again).
	pid = waitPrepared(t, m, 1)[0]
	var c3 collector
	p3 := stubStart(t, m, spec("third", 256, &c3))
	if sandbox.FromPrepared(p3) || p3.Pid() == pid {
		t.Error("a 256 MB start used the stub prepared for 128 MB")
	}
	waitDone(t, p3, 10*time.Second)
	if got := readFile(t, filepath.Join(sandbox.PreparedCgroup(m, pid), "memory.limit_in_bytes")); got != strconv.Itoa(128<<20) {
		t.Errorf("the 128 MB prepared stub's limit is now %s", got)
	}
}

// DiscardPrepared kills every prepared stub and removes its cgroup; a
// Manager keeps at most Options.Prepared, dropping the least recently
// started config's; Close leaves none behind (newManager's leak check).
func TestPreparedStubsDiscardedAndBounded(t *testing.T) {
	m := newManager(t, sandbox.Options{Prepared: 1}, nil)
	if !m.Enforced() {
		t.Skip("cgroups not usable here")
	}
	run := func(id string, mb int) {
		var c collector
		p := stubStart(t, m, sandbox.Spec{ID: id, Args: []string{self(t)}, MemoryMB: mb, Output: c.add, Env: []string{childEnv + "=hello"}})
		waitDone(t, p, 10*time.Second)
	}
	gone := func(pid int, dir string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !dead(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("prepared stub %d still alive", pid)
			}
			time.Sleep(time.Millisecond)
		}
		assertGone(t, []string{dir})
	}
	run("a", 128)
	pidA := waitPrepared(t, m, 1)[0]
	dirA := sandbox.PreparedCgroup(m, pidA)
	run("b", 192)
	// Only b's config is kept: a's stub goes once b's is prepared.
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := sandbox.PreparedStubs(m)
		if len(pids) == 1 && pids[0] != pidA {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prepared stubs %v, want one that is not %d", pids, pidA)
		}
		time.Sleep(time.Millisecond)
	}
	gone(pidA, dirA)

	pidB := sandbox.PreparedStubs(m)[0]
	dirB := sandbox.PreparedCgroup(m, pidB)
	m.DiscardPrepared()
	if pids := sandbox.PreparedStubs(m); len(pids) != 0 {
		t.Fatalf("prepared stubs %v after DiscardPrepared", pids)
	}
	gone(pidB, dirB)
	// The config was forgotten too: nothing is prepared again until a
	// start asks for it.
	if n := sandbox.PreparedConfigs(m); n != 0 {
		t.Fatalf("%d configs still wanted after DiscardPrepared", n)
	}
	run("c", 192)
	waitPrepared(t, m, 1)
}

// A stub prepared before the function's directory was replaced as a whole
// (moved aside, recreated: no deploy) holds a view of the old tree; the
// next start must not use it, and sees the new code.
func TestPreparedViewNotUsedAfterCodeReplaced(t *testing.T) {
	m := isolatedManager(t)
	code, _ := codeDir(t)
	appFile := filepath.Join(code, "app.txt")
	if err := os.WriteFile(appFile, []byte("v1"), 0o600); err != nil {
		t.Fatal(err)
	}
	iso := &sandbox.Isolation{UID: 200779, GID: 200779, Code: code, TmpMB: 8}
	probe := func(id string) (string, bool) {
		t.Helper()
		x, out, p := runIsolatedP(t, m, id, iso, childEnv+"=probe", "CODE_FILE="+appFile, "PATH=/usr/bin:/bin")
		if x.Code != 0 {
			t.Fatalf("probe exited %+v:\n%s", x, strings.Join(out, "\n"))
		}
		for _, l := range out {
			if v, ok := strings.CutPrefix(strings.TrimPrefix(l, "stdout: "), "read code: "); ok {
				return v, sandbox.FromPrepared(p)
			}
		}
		t.Fatalf("no read code line:\n%s", strings.Join(out, "\n"))
		return "", false
	}
	if got, _ := probe("v1"); got != "ok v1" {
		t.Fatalf("first start read %q", got)
	}
	waitPrepared(t, m, 1)

	if err := os.Rename(code, code+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(code, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"fn", "app.txt"} {
		b, err := os.ReadFile(filepath.Join(code+".old", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "app.txt" {
			b = []byte("v2")
		}
		if err := os.WriteFile(filepath.Join(code, f), b, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	got, prepared := probe("v2")
	if prepared {
		t.Error("the start used the stub prepared with the replaced directory")
	}
	if got != "ok v2" {
		t.Errorf("read %q after the directory was replaced, want the new code", got)
	}
}
