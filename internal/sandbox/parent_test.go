package sandbox_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// sharedManager is a Manager closed at the end of t if the test has not
// closed it (a second Close does nothing). Not newManager: its leak check
// would run while another Manager still holds the parent cgroup.
func sharedManager(t *testing.T, opts sandbox.Options) *sandbox.Manager {
	t.Helper()
	m, err := sandbox.NewWithOptions(slog.New(slog.NewTextHandler(testWriter{t}, nil)), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	if !m.Enforced() {
		sandboxtest.SkipWithoutCgroups(t, "cgroups not usable here (needs root and a writable /sys/fs/cgroup)")
	}
	return m
}

// assertMember fails t unless pid is listed in the cgroup dir.
func assertMember(t *testing.T, dir string, pid int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Errorf("cgroup %s: %v", dir, err)
		return
	}
	if !slices.Contains(strings.Fields(string(b)), strconv.Itoa(pid)) {
		t.Errorf("pid %d not in cgroup %s (members %q)", pid, dir, b)
	}
}

// Two Managers in one process share its parent cgroup stoke/<pid>. Closing
// the first leaves the second's instance and idle stub running in their
// cgroups, and succeeds (it used to wait its 5 s for them to leave the
// parent and then fail: "contains running processes"); the second still
// starts instances there, and its Close, the last, removes the parent.
func TestManagersShareParentCgroup(t *testing.T) {
	sandboxtest.CheckNoLeaks(t) // registered first, so it runs after both Close
	first, second := sharedManager(t, sandbox.Options{}), sharedManager(t, sandbox.Options{})
	var c1, c2 collector
	p1 := stubStart(t, first, sandbox.Spec{ID: "first", MemoryMB: 128, Output: c1.add, Env: []string{childEnv + "=readysleep"}})
	p2 := stubStart(t, second, sandbox.Spec{ID: "second", MemoryMB: 128, Output: c2.add, Env: []string{childEnv + "=readysleep"}})
	c1.waitFor(t, "stdout: ready", 1)
	c2.waitFor(t, "stdout: ready", 1)
	waitStubs(t, first, 1)
	waitStubs(t, second, 1) // an idle stub of the second's in the parent too
	idle := sandbox.IdleStubPids(second)
	parent := sandbox.CgroupDirs(second, "")
	if !slices.Equal(parent, sandbox.CgroupDirs(first, "")) {
		t.Fatalf("parents %q and %q, want one shared", sandbox.CgroupDirs(first, ""), parent)
	}

	if err := first.Close(context.Background()); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	waitDone(t, p1, time.Second) // Close returned, so already done
	select {
	case <-p2.Done():
		t.Fatalf("the second's instance ended with the first's Close: %+v", p2.Exit())
	default:
	}
	for _, d := range sandbox.CgroupDirs(second, "second") {
		assertMember(t, d, p2.Pid())
	}
	for _, pid := range idle {
		if dead(pid) {
			t.Errorf("the second's idle stub %d ended with the first's Close", pid)
		}
	}
	// A Close again gives back no reference it no longer holds.
	if err := first.Close(context.Background()); err != nil {
		t.Fatalf("first Close again: %v", err)
	}
	p3 := start(t, second, "third", 0, nil, childEnv+"=exit")
	if ex := waitDone(t, p3, 10*time.Second); ex.Code != 0 {
		t.Fatalf("third: exit %+v", ex)
	}

	if err := second.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	waitDone(t, p2, time.Second)
	assertGone(t, parent)
	if dirs := sandboxtest.StokeCgroups(); len(dirs) != 0 {
		t.Errorf("cgroups after the last Close: %q", dirs)
	}
}

// A Manager opening while the last one closes gets a parent cgroup that
// stays: either the closing one's, still counted, or one made anew after
// its removal, never one removed under it.
func TestManagerOpensWhileLastCloses(t *testing.T) {
	sandboxtest.CheckNoLeaks(t)
	opts := sandbox.Options{Stubs: -1, Prepared: -1}
	old := sharedManager(t, opts)
	p := start(t, old, "old", 128, nil, childEnv+"=sleep")
	var wg sync.WaitGroup
	var closeErr error
	wg.Go(func() { closeErr = old.Close(context.Background()) })
	m := sharedManager(t, opts)
	wg.Wait()
	if closeErr != nil {
		t.Fatalf("old Close: %v", closeErr)
	}
	waitDone(t, p, time.Second)
	p = start(t, m, "new", 0, nil, childEnv+"=exit")
	if ex := waitDone(t, p, 10*time.Second); ex.Code != 0 {
		t.Fatalf("exit %+v", ex)
	}
	parent := sandbox.CgroupDirs(m, "")
	if err := m.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertGone(t, parent)
}
