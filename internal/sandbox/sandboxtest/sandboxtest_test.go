package sandboxtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if os.Getenv("SANDBOXTEST_CHILD") != "" {
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	InOwnMountNamespace()
	os.Exit(m.Run())
}

// The detectors must see what CheckNoLeaks would report.
func TestDetectsLeaks(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = []string{"SANDBOXTEST_CHILD=1"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	found := slices.ContainsFunc(Children(), func(s string) bool { return strings.HasPrefix(s, pid+" ") })
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if !found {
		t.Errorf("Children() = %q, missing %s", Children(), pid)
	}
	if kids := Children(); len(kids) != 0 {
		t.Errorf("Children() after reap = %q", kids)
	}

	dir := filepath.Join("/sys/fs/cgroup/pids/stoke", strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		SkipWithoutCgroups(t, fmt.Sprintf("cannot make a cgroup here: %v", err))
	}
	got := StokeCgroups()
	_ = os.Remove(dir)
	_ = os.Remove(filepath.Dir(dir))
	if !slices.Contains(got, dir) {
		t.Errorf("StokeCgroups() = %q, missing %s", got, dir)
	}
	if got := StokeCgroups(); len(got) != 0 {
		t.Errorf("StokeCgroups() after removal = %q", got)
	}
}

func TestDetectsMounts(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4k"); err != nil {
		SkipWithoutCgroups(t, fmt.Sprintf("cannot mount here (needs root): %v", err))
	}
	got := Mounts()[dir]
	if err := syscall.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
	if !got {
		t.Errorf("Mounts() misses %s", dir)
	}
	if Mounts()[dir] {
		t.Errorf("Mounts() still has %s after unmount", dir)
	}
}

// As root the binary runs in a mount namespace of its own: a mount another
// test binary makes in the namespace `go test` started it in is not seen,
// while one that a process of this binary's leaks through propagation (a
// stub in a namespace of its own that did not make its mounts private) is.
func TestMountsAreThisBinarysOwn(t *testing.T) {
	if os.Geteuid() != 0 {
		SkipWithoutCgroups(t, "mount namespaces need root")
	}
	self, _ := os.Readlink("/proc/self/ns/mnt")
	parent, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid()))
	if !inOwnNS || self == parent {
		t.Fatalf("mount namespace %s, parent's %s (own %t): not a namespace of its own", self, parent, inOwnNS)
	}
	before := Mounts()

	// Another test binary's mount: made in the parent's namespace.
	other := t.TempDir()
	if out, err := exec.Command("nsenter", fmt.Sprintf("--mount=/proc/%d/ns/mnt", os.Getppid()),
		"mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", other).CombinedOutput(); err != nil {
		t.Fatalf("mount in the parent's namespace: %v: %s", err, out)
	}
	defer exec.Command("nsenter", fmt.Sprintf("--mount=/proc/%d/ns/mnt", os.Getppid()), "umount", other).Run()
	if Mounts()[other] {
		t.Errorf("a mount made in another namespace is listed: %s", other)
	}

	// A child in a namespace of its own whose mount propagates back.
	leak := t.TempDir()
	if out, err := exec.Command("unshare", "--mount", "--propagation", "unchanged",
		"mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", leak).CombinedOutput(); err != nil {
		t.Fatalf("mount in a child namespace: %v: %s", err, out)
	}
	got := Mounts()[leak]
	_ = syscall.Unmount(leak, 0)
	if !got {
		t.Errorf("a mount propagated from a child's namespace is not listed: %s", leak)
	}
	for m := range Mounts() {
		if !before[m] {
			t.Errorf("mount %s left", m)
		}
	}
}
