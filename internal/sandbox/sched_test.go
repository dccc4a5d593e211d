package sandbox_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stokehq/stoke/internal/sandbox"
)

// threadPolicies is "tid=policy" for every thread of pid.
func threadPolicies(pid int) string {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return "error: " + err.Error()
	}
	var out []string
	for _, t := range tasks {
		var tid int
		fmt.Sscan(t.Name(), &tid)
		attr, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue // the thread exited meanwhile
		}
		out = append(out, fmt.Sprintf("%d=%d", tid, attr.Policy))
	}
	return strings.Join(out, " ")
}

// assertPolicies checks that every thread in a "tid=policy ..." list has
// policy want, and that there are at least min threads.
func assertPolicies(t *testing.T, what, list string, want uint32, min int) {
	t.Helper()
	f := strings.Fields(list)
	if len(f) < min {
		t.Errorf("%s: %d threads (%q), want ≥ %d", what, len(f), list, min)
	}
	for _, e := range f {
		if !strings.HasSuffix(e, fmt.Sprintf("=%d", want)) {
			t.Errorf("%s: thread %s, want policy %d (%q)", what, e, want, list)
		}
	}
}

// Every thread of an instance runs as SCHED_BATCH, however it was started
// (an idle stub, a fork when none is ready, an isolated stub), and Stoke's
// own threads keep their policy.
func TestInstancesRunAsBatch(t *testing.T) {
	policies := func(t *testing.T, out []string) string {
		t.Helper()
		i := slices.IndexFunc(out, func(l string) bool { return strings.HasPrefix(l, "stdout: policies ") })
		if i < 0 {
			t.Fatalf("no policies line in %q", out)
		}
		return strings.TrimPrefix(out[i], "stdout: policies ")
	}
	t.Run("stub", func(t *testing.T) {
		m := enforced(t)
		var c collector
		p := stubStart(t, m, sandbox.Spec{ID: "batch-stub", MemoryMB: 128, Output: c.add, Env: []string{childEnv + "=sched"}})
		if ex := waitDone(t, p, 10*time.Second); ex.Code != 0 {
			t.Fatalf("exit %+v, output %q", ex, c.get())
		}
		// A Go program has several threads by main: sysmon, GC workers.
		assertPolicies(t, "instance", policies(t, c.get()), unix.SCHED_BATCH, 2)
	})
	t.Run("fork", func(t *testing.T) {
		m := newManager(t, sandbox.Options{Stubs: -1}, nil)
		if !m.Enforced() {
			t.Skip("no cgroups: the fork path without them is the same call")
		}
		var c collector
		p := start(t, m, "batch-fork", 128, c.add, childEnv+"=sched")
		if sandbox.FromStub(p) {
			t.Fatal("started from a stub, want a fork")
		}
		if ex := waitDone(t, p, 10*time.Second); ex.Code != 0 {
			t.Fatalf("exit %+v, output %q", ex, c.get())
		}
		assertPolicies(t, "instance", policies(t, c.get()), unix.SCHED_BATCH, 2)
		// The thread that forked went back to Stoke's policy.
		assertPolicies(t, "this process", threadPolicies(os.Getpid()), unix.SCHED_NORMAL, 2)
	})
	t.Run("isolated", func(t *testing.T) {
		m := isolatedManager(t)
		code, _ := codeDir(t)
		iso := &sandbox.Isolation{UID: 200778, GID: 200778, Code: code, TmpMB: 8}
		x, out := runIsolated(t, m, "batch-iso", iso, childEnv+"=sched")
		if x.Code != 0 {
			t.Fatalf("exit %+v, output %q", x, out)
		}
		assertPolicies(t, "instance", policies(t, out), unix.SCHED_BATCH, 2)
	})
}
