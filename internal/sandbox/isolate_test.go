package sandbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// probe runs inside an isolated instance (child mode "probe") and prints
// what it can and cannot do, one "name: result" line each, for
// TestIsolatedView. Paths to try come in the environment, as an attacker
// would guess them.
func probe() {
	say := func(name string, v any) { fmt.Printf("%s: %v\n", name, v) }
	errOf := func(err error) string {
		if err == nil {
			return "ok"
		}
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return unix.ErrnoName(errno)
		}
		return err.Error()
	}
	say("uid", fmt.Sprintf("%d/%d", os.Getuid(), os.Getgid()))
	groups, _ := os.Getgroups()
	say("groups", len(groups))
	say("pid", os.Getpid())
	status, _ := os.ReadFile("/proc/self/status")
	for line := range strings.Lines(string(status)) {
		for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"} {
			if v, ok := strings.CutPrefix(line, k+":"); ok {
				say(k, strings.TrimSpace(v))
			}
		}
	}
	var lim unix.Rlimit
	_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	say("nofile", fmt.Sprintf("%d/%d", lim.Cur, lim.Max))
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			n++
		}
	}
	say("procs", n)
	root, _ := os.ReadDir("/")
	var names []string
	for _, e := range root {
		names = append(names, e.Name())
	}
	say("root", strings.Join(names, ","))
	// Mounts outside its root (the host's) are not listed.
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	say("host mounts listed", strings.Count(string(mi), "cgroup")+strings.Count(string(mi), " /sys"))
	for _, k := range []string{"SECRET_FILE", "HIDDEN_DIR", "OTHER_DIR"} {
		b, err := os.ReadFile(os.Getenv(k))
		if err == nil && len(b) > 0 {
			err = fmt.Errorf("read %d bytes", len(b))
		}
		if k != "SECRET_FILE" {
			_, err = os.ReadDir(os.Getenv(k) + "/x")
			if err == nil || errors.Is(err, os.ErrNotExist) {
				var ents []os.DirEntry
				ents, err = os.ReadDir(os.Getenv(k))
				if err == nil && len(ents) > 0 {
					err = fmt.Errorf("%d entries", len(ents))
				}
			}
		}
		say("read "+k, errOf(err))
	}
	b, err := os.ReadFile(os.Getenv("CODE_FILE"))
	say("read code", errOf(err)+" "+strings.TrimSpace(string(b)))
	say("write code", errOf(os.WriteFile(os.Getenv("CODE_FILE"), []byte("x"), 0o644)))
	say("write writable", errOf(os.WriteFile(os.Getenv("WRITABLE_DIR")+"/w", []byte("x"), 0o644)))
	say("write tmp", errOf(os.WriteFile("/tmp/t", []byte("x"), 0o644)))
	say("write etc", errOf(os.WriteFile("/etc/stoke-probe", []byte("x"), 0o644)))
	say("cgroup file", errOf(os.WriteFile("/sys/fs/cgroup/memory/memory.limit_in_bytes", []byte("-1"), 0)))
	say("mount", errOf(unix.Mount("tmpfs", "/tmp", "tmpfs", 0, "")))
	say("unshare user", errOf(unix.Unshare(unix.CLONE_NEWUSER)))
	_, _, e := unix.RawSyscall(unix.SYS_PTRACE, unix.PTRACE_ATTACH, 1, 0)
	say("ptrace", errOf(errnoOrNil(e)))
	_, _, e = unix.RawSyscall(unix.SYS_BPF, 0, 0, 0)
	say("bpf", errOf(errnoOrNil(e)))
	_, _, e = unix.RawSyscall(unix.SYS_KEYCTL, 0, 0, 0)
	say("keyctl", errOf(errnoOrNil(e)))
	_, _, e = unix.RawSyscall6(unix.SYS_PERF_EVENT_OPEN, 0, 0, ^uintptr(0), ^uintptr(0), 0, 0)
	say("perf_event_open", errOf(errnoOrNil(e)))
	_, _, e = unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)
	say("clone3", errOf(errnoOrNil(e)))
	pid, _ := strconv.Atoi(os.Getenv("STOKE_PID"))
	say("kill stoke", errOf(unix.Kill(pid, 0)))
	_, err = os.ReadFile("/proc/" + os.Getenv("STOKE_PID") + "/environ")
	say("stoke environ", errOf(err))
	say("env", strings.Join(os.Environ(), ","))
	host, _ := os.Hostname()
	say("hostname", host)
	// A child works (the Go runtime's threads and exec use clone).
	out, err := exec.Command("/bin/sh", "-c", "echo child-ok").Output()
	say("child", errOf(err)+" "+strings.TrimSpace(string(out)))
}

func errnoOrNil(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// fillTmp writes /tmp until it fails (child mode "filltmp").
func fillTmp() {
	f, err := os.Create("/tmp/fill")
	if err != nil {
		fmt.Println("create:", err)
		return
	}
	buf := bytes.Repeat([]byte{1}, 1<<20)
	n := 0
	for ; n < 1<<12; n++ {
		if _, err = f.Write(buf); err != nil {
			break
		}
	}
	fmt.Printf("wrote %d MB: %v\n", n, err)
}

func isolatedManager(t testing.TB) *sandbox.Manager {
	t.Helper()
	if os.Geteuid() != 0 {
		sandboxtest.SkipWithoutCgroups(t, "isolation needs root")
	}
	m := newManager(t, sandbox.Options{Isolate: true}, nil)
	if !m.Enforced() {
		sandboxtest.SkipWithoutCgroups(t, "cgroups not usable here")
	}
	return m
}

// codeDir is a function's directory holding a copy of this test binary,
// owned by root with mode 0700, as a checkout can be: the function still
// reads it, through the idmapped mount.
func codeDir(t testing.TB) (dir, exe string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "code")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	exe = filepath.Join(dir, "fn")
	b, err := os.ReadFile(self(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir, exe
}

func runIsolated(t *testing.T, m *sandbox.Manager, id string, iso *sandbox.Isolation, env ...string) (sandbox.Exit, []string) {
	t.Helper()
	x, out, _ := runIsolatedP(t, m, id, iso, env...)
	return x, out
}

// runIsolatedP is runIsolated that also returns the process.
func runIsolatedP(t *testing.T, m *sandbox.Manager, id string, iso *sandbox.Isolation, env ...string) (sandbox.Exit, []string, sandbox.Process) {
	t.Helper()
	var c collector
	p, err := m.Start(context.Background(), sandbox.Spec{ID: id, Args: []string{filepath.Join(iso.Code, "fn")}, Dir: iso.Code,
		Env: env, MemoryMB: 256, Output: c.add, Isolation: iso})
	if err != nil {
		t.Fatal(err)
	}
	x := waitDone(t, p, 20*time.Second)
	return x, c.get(), p
}

func TestIsolatedView(t *testing.T) {
	m := isolatedManager(t)
	code, _ := codeDir(t)
	if err := os.WriteFile(filepath.Join(code, "app.txt"), []byte("my code"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := filepath.Dir(code)
	data := filepath.Join(code, ".stoke") // data_dir inside the code, as in examples/
	writable := filepath.Join(base, "var")
	other := filepath.Join(base, "other")
	for _, d := range []string{data, writable, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(code, "stoke.yaml")
	for _, f := range []string{secret, filepath.Join(data, "stoke.db"), filepath.Join(other, "x")} {
		if err := os.WriteFile(f, []byte("token: sekrit"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("STOKE_TEST_SECRET", "do-not-inherit")
	iso := &sandbox.Isolation{UID: 200777, GID: 200777, Code: code, Writable: []string{writable},
		Hide: []string{data, secret}, TmpMB: 8}
	// The second start finds a stub prepared ahead for the same config
	// (its view built before the start): it must isolate just the same.
	for run := range 2 {
		if run == 1 {
			waitPrepared(t, m, 1)
		}
		x, out, p := runIsolatedP(t, m, "probe-"+strconv.Itoa(run), iso, childEnv+"=probe", "SECRET_FILE="+secret, "HIDDEN_DIR="+data,
			"OTHER_DIR="+other, "CODE_FILE="+filepath.Join(code, "app.txt"), "WRITABLE_DIR="+writable,
			"STOKE_PID="+strconv.Itoa(os.Getpid()), "PATH=/usr/bin:/bin")
		got := map[string]string{}
		for _, l := range out {
			if k, v, ok := strings.Cut(strings.TrimPrefix(l, "stdout: "), ": "); ok {
				got[k] = v
			}
		}
		if x.Code != 0 {
			t.Fatalf("probe exited %+v:\n%s", x, strings.Join(out, "\n"))
		}
		want := map[string]string{
			"uid": "200777/200777", "groups": "0", "pid": "1",
			"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
			"CapBnd": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2",
			"nofile":             "1024/1024",
			"read SECRET_FILE":   "ok", // an empty file stands in for it
			"read HIDDEN_DIR":    "EACCES",
			"read OTHER_DIR":     "ENOENT",
			"read code":          "ok my code",
			"write code":         "EROFS",
			"write writable":     "ok",
			"write tmp":          "ok",
			"write etc":          "EROFS",
			"cgroup file":        "ENOENT",
			"mount":              "EPERM",
			"unshare user":       "EPERM",
			"ptrace":             "EPERM",
			"bpf":                "EPERM",
			"keyctl":             "EPERM",
			"perf_event_open":    "EPERM",
			"clone3":             "ENOSYS",
			"kill stoke":         "ESRCH",
			"stoke environ":      "ENOENT",
			"child":              "ok child-ok",
			"host mounts listed": "0",
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %q, want %q", k, got[k], v)
			}
		}
		if b, _ := os.ReadFile(secret); string(b) != "token: sekrit" {
			t.Errorf("the hidden config changed: %q", b)
		}
		// Only its own processes: itself and the shell's child at most.
		if n, _ := strconv.Atoi(got["procs"]); n < 1 || n > 2 {
			t.Errorf("sees %s processes", got["procs"])
		}
		if got["root"] != "bin,dev,etc,lib,lib64,proc,sbin,tmp,usr" && !strings.HasPrefix(got["root"], "bin,dev,etc,lib") {
			t.Errorf("root directory: %s", got["root"])
		}
		if strings.Contains(got["env"], "STOKE_TEST_SECRET") {
			t.Errorf("inherited Stoke's environment: %s", got["env"])
		}
		if (run == 1) != sandbox.FromPrepared(p) {
			t.Errorf("run %d: started in a prepared stub: %v", run, sandbox.FromPrepared(p))
		}
	}
	// The file the function wrote in its writable path is on the host,
	// owned by the path's owner (root), not by the function's user.
	fi, err := os.Stat(filepath.Join(writable, "w"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 {
		t.Errorf("written file owned by %d", st.Uid)
	}
}

// /tmp holds at most ephemeral storage, then ENOSPC; and it is gone with
// the instance.
func TestIsolatedTmpLimit(t *testing.T) {
	m := isolatedManager(t)
	code, _ := codeDir(t)
	iso := &sandbox.Isolation{UID: 200778, GID: 200778, Code: code, TmpMB: 16}
	_, out := runIsolated(t, m, "fill", iso, childEnv+"=filltmp")
	if len(out) != 1 || !strings.Contains(out[0], "wrote 16 MB: write /tmp/fill: no space left on device") {
		t.Errorf("output %q", out)
	}
}

func TestIsolationRefusesRoot(t *testing.T) {
	m := isolatedManager(t)
	code, exe := codeDir(t)
	for _, iso := range []*sandbox.Isolation{
		{UID: 0, GID: 100, Code: code},
		{UID: 100, GID: 0, Code: code},
		{UID: 100, GID: 100, Code: "/usr/lib"},
		{UID: 100, GID: 100, Code: code, Writable: []string{"/etc"}},
		{UID: 100, GID: 100, Code: "relative"},
	} {
		_, err := m.Start(context.Background(), sandbox.Spec{ID: "bad", Args: []string{exe}, Isolation: iso})
		if err == nil {
			t.Errorf("%+v started", iso)
		}
	}
	if _, err := m.Start(context.Background(), sandbox.Spec{ID: "none", Args: []string{exe}}); err == nil {
		t.Error("a spec without isolation started on an isolating manager")
	}
}

// From the host, an isolated process's executable and cwd read as the
// paths they are on the host (tests and tools that look for a function's
// leftover processes by path rely on it).
func TestIsolatedPathsReadTheSame(t *testing.T) {
	m := isolatedManager(t)
	code, exe := codeDir(t)
	var c collector
	p, err := m.Start(context.Background(), sandbox.Spec{ID: "paths", Args: []string{exe}, Dir: code, Output: c.add,
		Env: []string{childEnv + "=ignoreterm"}, Isolation: &sandbox.Isolation{UID: 200901, GID: 200901, Code: code}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background(), 0)
	c.waitFor(t, "stdout: ready", 1)
	pid := strconv.Itoa(p.Pid())
	if got, _ := os.Readlink("/proc/" + pid + "/exe"); got != exe {
		t.Errorf("exe reads %q, want %q", got, exe)
	}
	if got, _ := os.Readlink("/proc/" + pid + "/cwd"); got != code {
		t.Errorf("cwd reads %q, want %q", got, code)
	}
}
