package sandboxtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
		t.Skipf("cannot make a cgroup here: %v", err)
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
