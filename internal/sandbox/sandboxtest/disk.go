package sandboxtest

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Tmpfs mounts a tmpfs of size (e.g. "8m") on dir, or on a new directory
// when dir is "", for a test of a full disk, and unmounts it when t ends
// (register it before what must be gone first: cleanups run last first).
// It needs root: without, it skips t, or fails it under
// STOKE_REQUIRE_CGROUPS=1.
func Tmpfs(t testing.TB, dir, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipWithoutCgroups(t, "mounting a tmpfs needs root")
	}
	if dir == "" {
		dir = t.TempDir()
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+size+",mode=0700"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Fill writes the file dir/filler until dir's file system is full, and
// returns its path: removing it frees the space.
func Fill(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return path
		}
	}
}
