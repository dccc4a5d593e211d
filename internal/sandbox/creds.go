package sandbox

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Lambda's limits per execution environment: 1,024 open files. (Its 1,024
// processes and threads are the pids cgroup's limit here, per instance,
// because RLIMIT_NPROC would count every instance of the function at once.)
const nofile = 1024

// dropPrivileges makes the calling thread (the one about to exec the app)
// the function's user, for good: no capabilities in any set, not even in
// the bounding set, no supplementary groups, no_new_privs, Lambda's file
// limit, no core dumps, and the seccomp filters. The Go runtime's other
// threads keep root, but execve ends them; so these are the raw per-thread
// system calls, not syscall.Setuid, which changes every thread.
func dropPrivileges(uid, gid int) error {
	// The file limit is per process; syscall.Setrlimit (not unix's) so
	// syscall.Exec does not restore the limit the Go runtime started with.
	lim := &syscall.Rlimit{Cur: nofile, Max: nofile}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, lim); err != nil {
		return fmt.Errorf("limit open files: %w", err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return fmt.Errorf("disable core dumps: %w", err)
	}
	for c := 0; ; c++ {
		// EINVAL past the last capability this kernel knows.
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err == unix.EINVAL {
			break
		} else if err != nil {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
		return fmt.Errorf("setresgid %d: %w", gid, e)
	}
	// Leaving uid 0 clears the permitted and effective sets.
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
		return fmt.Errorf("setresuid %d: %w", uid, e)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var none [2]unix.CapUserData // the inheritable set too
	if err := unix.Capset(&hdr, &none[0]); err != nil {
		return fmt.Errorf("clear capabilities: %w", err)
	}
	// A change of credentials cleared the parent-death signal: the app must
	// still die with Stoke.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("parent-death signal: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	return loadSeccomp()
}
