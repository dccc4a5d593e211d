package sandbox_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/sandbox"
)

// forker plays a Python template: it starts a grandchild with the output
// pipes it was handed (fds 3 and 4) and the go-ahead pipe (fd 5) as stdin,
// prints its pid, reaps it and prints the wait status.
func forker() {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=adoptee")
	cmd.Stdout, cmd.Stderr, cmd.Stdin = os.NewFile(3, "stdout"), os.NewFile(4, "stderr"), os.NewFile(5, "go")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("pid", cmd.Process.Pid)
	_ = cmd.Wait()
	fmt.Println("status", uint32(cmd.ProcessState.Sys().(syscall.WaitStatus)))
}

// adopt runs a forker for a prepared sandbox and adopts its child.
func adopt(t *testing.T, m *sandbox.Manager, spec sandbox.Spec, env ...string) (sandbox.Adopted, *os.File, *bufio.Scanner) {
	t.Helper()
	f, err := m.Prepare(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	goR, goW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self(t))
	cmd.Env = append(os.Environ(), append(env, childEnv+"=forker")...)
	cmd.ExtraFiles = []*os.File{f.Stdout, f.Stderr, goR}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		f.Abandon()
		t.Fatal(err)
	}
	goR.Close()
	t.Cleanup(func() { goW.Close(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		f.Abandon()
		t.Fatalf("forker said nothing: %v", sc.Err())
	}
	pid, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "pid "))
	if err != nil {
		f.Abandon()
		t.Fatalf("forker: %q", sc.Text())
	}
	p, err := f.Adopt(pid)
	if err != nil {
		t.Fatal(err)
	}
	return p, goW, sc
}

// reaped passes the forker's report of the child's status to p.
func reaped(t *testing.T, p sandbox.Adopted, sc *bufio.Scanner) {
	t.Helper()
	if !sc.Scan() {
		t.Fatalf("forker did not report a status: %v", sc.Err())
	}
	ws, err := strconv.ParseUint(strings.TrimPrefix(sc.Text(), "status "), 10, 32)
	if err != nil {
		t.Fatalf("forker: %q", sc.Text())
	}
	p.Reaped(syscall.WaitStatus(ws))
}

func TestAdoptForkedProcess(t *testing.T) {
	m := enforced(t)
	var c collector
	p, goW, sc := adopt(t, m, sandbox.Spec{ID: "adopted", MemoryMB: 128, InitBoost: true, Output: c.add})

	// In its own cgroup before it runs: the go-ahead has not been sent.
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cg), "/adopted\n") {
		t.Errorf("adopted process is not in its cgroup:\n%s", cg)
	}
	dirs := sandbox.CgroupDirs(m, "adopted")
	quota := func() string {
		for _, d := range dirs {
			if b, err := os.ReadFile(filepath.Join(d, "cpu.cfs_quota_us")); err == nil {
				return strings.TrimSpace(string(b))
			}
			if b, err := os.ReadFile(filepath.Join(d, "cpu.max")); err == nil {
				return strings.Fields(string(b))[0]
			}
		}
		return "?"
	}
	if q := quota(); q != "-1" && q != "max" {
		t.Errorf("boosted cgroup has cpu quota %s, want none", q)
	}
	if err := p.EndInitBoost(); err != nil {
		t.Fatal(err)
	}
	if q, want := quota(), strconv.Itoa(100000*128/sandbox.MBPerCPU); q != want {
		t.Errorf("after the boost cpu quota is %s, want %s", q, want)
	}
	// Boosted again, and the quota back after it.
	if err := p.Boost(); err != nil {
		t.Fatal(err)
	}
	if q := quota(); q != "-1" && q != "max" {
		t.Errorf("boosted again, the cgroup has cpu quota %s, want none", q)
	}
	if err := p.EndInitBoost(); err != nil {
		t.Fatal(err)
	}
	if q, want := quota(), strconv.Itoa(100000*128/sandbox.MBPerCPU); q != want {
		t.Errorf("after the second boost cpu quota is %s, want %s", q, want)
	}

	fmt.Fprintln(goW, "go")
	reaped(t, p, sc)
	ex := waitDone(t, p, 10*time.Second)
	if ex.Code != 3 || ex.OOMKilled || ex.Stopped {
		t.Errorf("exit %+v, want code 3", ex)
	}
	c.waitFor(t, "stdout: adoptee "+strconv.Itoa(p.Pid())+" go", 1)
	c.waitFor(t, "stderr: adoptee stderr", 1)
	assertGone(t, dirs)
}

func TestAdoptedOOM(t *testing.T) {
	m := enforced(t)
	p, goW, sc := adopt(t, m, sandbox.Spec{ID: "adopted-oom", MemoryMB: 128}, "STOKE_ALLOC_MB=300")
	fmt.Fprintln(goW, "go")
	reaped(t, p, sc)
	ex := waitDone(t, p, 20*time.Second)
	if !ex.OOMKilled || ex.Signal != "killed" {
		t.Errorf("exit %+v, want OOM-killed", ex)
	}
	// The peak can pass the limit by a few pages: the kernel charges some
	// of its own allocations (page tables, on the way to the OOM kill)
	// whatever the limit, and MaxMemoryMB rounds up.
	if mb := p.MaxMemoryMB(); mb < 100 || mb > 128 {
		t.Errorf("max memory %d MB, want about the 128 MB limit", mb)
	}
}

func TestAdoptedStop(t *testing.T) {
	m := enforced(t)
	p, _, sc := adopt(t, m, sandbox.Spec{ID: "adopted-stop", MemoryMB: 128})
	done := make(chan struct{})
	go func() { defer close(done); reaped(t, p, sc) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Stop(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	<-done
	if ex := p.Exit(); !ex.Stopped || ex.Signal != "terminated" {
		t.Errorf("exit %+v, want stopped by SIGTERM", ex)
	}
	if !dead(p.Pid()) {
		t.Errorf("pid %d alive after Stop", p.Pid())
	}
}

func TestAbandon(t *testing.T) {
	m := enforced(t)
	f, err := m.Prepare(context.Background(), sandbox.Spec{ID: "abandoned", MemoryMB: 128})
	if err != nil {
		t.Fatal(err)
	}
	dirs := sandbox.CgroupDirs(m, "abandoned")
	if _, err := m.Prepare(context.Background(), sandbox.Spec{ID: "abandoned"}); err == nil {
		t.Error("a second Prepare with the same id succeeded")
	}
	f.Abandon()
	assertGone(t, dirs)
	f2, err := m.Prepare(context.Background(), sandbox.Spec{ID: "abandoned"})
	if err != nil {
		t.Fatalf("the id is not free after Abandon: %v", err)
	}
	f2.Abandon()
}

// Adopted processes are waited for in Go's poller: a dozen idle ones do
// not hold a dozen threads (a thousand idle forked instances held a
// thousand threads in blocking polls of their pidfds).
func TestAdoptedWaitWithoutThreads(t *testing.T) {
	m := enforced(t)
	threads := func() int {
		ents, _ := os.ReadDir("/proc/self/task")
		return len(ents)
	}
	type adoptee struct {
		p   sandbox.Adopted
		goW *os.File
		sc  *bufio.Scanner
	}
	var as []adoptee
	before := threads()
	const n = 12
	for i := range n {
		p, goW, sc := adopt(t, m, sandbox.Spec{ID: fmt.Sprintf("idle-%d", i), MemoryMB: 128}, "")
		as = append(as, adoptee{p, goW, sc})
	}
	time.Sleep(100 * time.Millisecond) // long enough for a blocked wait to have taken its thread
	if grew := threads() - before; grew >= n/2 {
		t.Errorf("%d idle adopted processes added %d threads", n, grew)
	}
	for _, a := range as {
		fmt.Fprintln(a.goW, "go")
		reaped(t, a.p, a.sc)
		if ex := waitDone(t, a.p, 10*time.Second); ex.Code != 3 {
			t.Errorf("exit %+v, want code 3", ex)
		}
	}
}

// SetMemoryMB moves a running process's memory limit up and down (and
// memory+swap with it, which v1 needs in the right order).
func TestSetMemoryMB(t *testing.T) {
	m := enforced(t)
	p := start(t, m, "resize", 128, nil, childEnv+"=sleep")
	defer p.Stop(context.Background(), 0)
	l, ok := p.(interface{ SetMemoryMB(int) error })
	if !ok {
		t.Fatal("a sandboxed process has no SetMemoryMB")
	}
	limit := func() (mem, memsw string) {
		for _, d := range sandbox.CgroupDirs(m, "resize") {
			if b, err := os.ReadFile(filepath.Join(d, "memory.limit_in_bytes")); err == nil {
				mem = strings.TrimSpace(string(b))
				if b, err := os.ReadFile(filepath.Join(d, "memory.memsw.limit_in_bytes")); err == nil {
					memsw = strings.TrimSpace(string(b))
				}
			}
			if b, err := os.ReadFile(filepath.Join(d, "memory.max")); err == nil {
				mem = strings.TrimSpace(string(b))
			}
		}
		return mem, memsw
	}
	for _, mb := range []int{300, 200, 128} {
		if err := l.SetMemoryMB(mb); err != nil {
			t.Fatalf("SetMemoryMB(%d): %v", mb, err)
		}
		want := strconv.Itoa(mb << 20)
		if mem, memsw := limit(); mem != want || (memsw != "" && memsw != want) {
			t.Errorf("after SetMemoryMB(%d): limit %s, memory+swap %q; want %s", mb, mem, memsw, want)
		}
	}
}

// A reaper that reports late (a python template on a loaded machine) still
// gives the exit its status: the exit waits for it, not for a fixed time.
func TestAdoptedStatusReportedLate(t *testing.T) {
	m := enforced(t)
	p, goW, sc := adopt(t, m, sandbox.Spec{ID: "adopted-late", MemoryMB: 128})
	fmt.Fprintln(goW, "go")
	if !sc.Scan() {
		t.Fatalf("forker did not report a status: %v", sc.Err())
	}
	ws, err := strconv.ParseUint(strings.TrimPrefix(sc.Text(), "status "), 10, 32)
	if err != nil {
		t.Fatalf("forker: %q", sc.Text())
	}
	// The child is reaped; its status is held back, as a busy reaper would.
	select {
	case <-p.Done():
		t.Fatalf("done before its status was reported: %+v", p.Exit())
	case <-time.After(time.Second):
	}
	p.Reaped(syscall.WaitStatus(ws))
	if ex := waitDone(t, p, 10*time.Second); ex.Code != 3 || ex.Signal != "" {
		t.Errorf("exit %+v, want code 3", ex)
	}
}

// A reaper that is gone (a template that died) reports nothing: the exit
// is known at once, with its status unknown.
func TestAdoptedOrphaned(t *testing.T) {
	m := enforced(t)
	p, goW, sc := adopt(t, m, sandbox.Spec{ID: "adopted-orphan", MemoryMB: 128})
	p.Orphaned()
	fmt.Fprintln(goW, "go")
	if !sc.Scan() {
		t.Fatalf("forker did not report a status: %v", sc.Err())
	}
	ex := waitDone(t, p, 5*time.Second) // well before the wait for a live reaper ends
	if ex.Code != -1 || !strings.HasPrefix(ex.Signal, "unknown") {
		t.Errorf("exit %+v, want an unknown status", ex)
	}
}
