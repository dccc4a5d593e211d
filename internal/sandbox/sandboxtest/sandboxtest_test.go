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
