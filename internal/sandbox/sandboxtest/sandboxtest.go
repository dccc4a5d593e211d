// Package sandboxtest helps tests that start sandboxed processes prove they
// leave nothing behind.
package sandboxtest

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// CheckNoLeaks registers a cleanup that fails t if, once t and its subtests
// are done, a child process of this test binary is still alive or a zombie
// nobody reaped, a stoke/<this pid> cgroup exists in any hierarchy, or a
// mount appeared in this binary's own mount namespace (an isolated
// instance's mounts must stay in its own), or this binary still has a file
// open in one of its cgroups (a kept peak-memory file, say). Each is this binary's alone:
// its children, its pid's cgroups, and (as root) a mount namespace no other
// test binary mounts in, which TestMain makes with InOwnMountNamespace.
// Namespaces live only as long as their processes, so no child left means
// no namespace left.
// Cleanups run last-registered first, so call it before creating a Manager
// whose Close is also a cleanup. It waits up to 2 s for things to settle.
// Not for tests running in parallel with others that start processes: their
// children are children of this binary too.
func CheckNoLeaks(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 && !inOwnNS {
		t.Fatal("sandboxtest: call sandboxtest.InOwnMountNamespace() in TestMain before m.Run: without it, mounts other test binaries make look like this one's leaks")
	}
	before := Mounts()
	t.Cleanup(func() {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for {
			kids, dirs, files := Children(), StokeCgroups(), CgroupFiles()
			var mounts []string
			for m := range Mounts() {
				if !before[m] {
					mounts = append(mounts, m)
				}
			}
			if len(kids) == 0 && len(dirs) == 0 && len(mounts) == 0 && len(files) == 0 {
				return
			}
			if time.Now().After(deadline) {
				for _, k := range kids {
					t.Errorf("leaked child process: %s", k)
				}
				for _, d := range dirs {
					t.Errorf("leaked cgroup: %s", d)
				}
				for _, m := range mounts {
					t.Errorf("leaked mount: %s", m)
				}
				for _, f := range files {
					t.Errorf("leaked descriptor: %s", f)
				}
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// Children describes each process whose parent is this process, as
// "pid (comm) state", zombies included.
func Children() []string {
	self := os.Getpid()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []string{"cannot list /proc: " + err.Error()}
	}
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...; comm may contain spaces and parentheses.
		s := string(b)
		end := strings.LastIndexByte(s, ')')
		if end < 0 {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == self {
			out = append(out, fmt.Sprintf("%d %s state %s", pid, s[strings.IndexByte(s, '('):end+1], f[0]))
		}
	}
	return out
}

// StokeCgroups lists every directory .../stoke/<this pid> in every mounted
// cgroup hierarchy, wherever it is nested.
func StokeCgroups() []string {
	want := filepath.Join("stoke", strconv.Itoa(os.Getpid()))
	var out []string
	for _, mnt := range cgroupMounts() {
		_ = filepath.WalkDir(mnt, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if strings.HasSuffix(path, "/"+want) {
				out = append(out, path)
				return fs.SkipDir
			}
			if strings.Count(path[len(mnt):], "/") > 8 {
				return fs.SkipDir
			}
			return nil
		})
	}
	return out
}

// CgroupFiles lists the files this process holds open under its
// stoke/<this pid> cgroups, as "fd -> path".
func CgroupFiles() []string {
	want := "/stoke/" + strconv.Itoa(os.Getpid()) + "/"
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return []string{"cannot list /proc/self/fd: " + err.Error()}
	}
	var out []string
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // closed meanwhile (the directory's own descriptor, too)
		}
		if strings.Contains(target, want) {
			out = append(out, e.Name()+" -> "+target)
		}
	}
	return out
}

// Mounts is the set of mount points in this process's mount namespace.
func Mounts() map[string]bool {
	out := map[string]bool{}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return out
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 4 {
			out[f[4]] = true
		}
	}
	return out
}

func cgroupMounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ... mountpoint ... - fstype source options
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, typ := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(typ) < 1 {
			continue
		}
		if typ[0] == "cgroup" || typ[0] == "cgroup2" {
			out = append(out, fields[4])
		}
	}
	return out
}

// InDir puts this test binary in dir (a hard link, or a copy across
// filesystems) and returns its path there. A test whose function is the
// test binary itself needs it: an isolated function sees only its own
// directory, not the go-build one the binary runs from.
func InDir(t testing.TB, dir string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(exe))
	if err := os.Link(exe, dst); err == nil {
		return dst
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}
