package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// Stoke run by an ordinary user (a laptop) still serves, and says loudly
// that functions are not isolated. The test drops root for a subprocess:
// stoke runs as nobody, in a directory nobody owns.
func TestNonRootServesAndWarns(t *testing.T) {
	if os.Geteuid() != 0 {
		sandboxtest.SkipWithoutCgroups(t, "needs root, to drop it")
	}
	stokeBin, hello := build(t)
	dir, err := os.MkdirTemp("", "stoke-nonroot")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	gw, adm := freeAddr(t), freeAddr(t)
	cfg := writeConfig(t, dir, gw, adm, hello, "hi")
	// The binaries, readable by nobody: the build dir is root's.
	bin := filepath.Join(dir, "stoke")
	copyFile(t, stokeBin, bin)
	const nobody = 65534
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, nobody, nobody)
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := startStokeWith(t, bin, cfg, gw, func(c *exec.Cmd) {
		c.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	})
	defer s.stop()
	out := s.out.String()
	if !strings.Contains(out, "WARNING: FUNCTIONS ARE NOT ISOLATED") || !strings.Contains(out, "Stoke is not running as root") {
		t.Errorf("no loud warning:\n%s", out)
	}
	if !strings.Contains(out, "MEMORY AND CPU LIMITS ARE NOT ENFORCED") {
		t.Errorf("no warning about limits:\n%s", out)
	}
	resp, body := s.get("/hello")
	if resp.StatusCode != 200 || !strings.Contains(body, "hi") {
		t.Errorf("GET /hello as nobody: %d %q", resp.StatusCode, body)
	}
}
