package sandbox

import (
	"fmt"
	"sync"
	"unsafe"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// deniedSyscalls are refused (EPERM) to every function: what changes the
// machine or the sandbox (mounts, namespaces, modules, clocks, swap,
// reboot), reaches into other processes (ptrace, process_vm_*, kcmp,
// pidfd_getfd) or exposes kernel surface no function needs and attacks use
// (bpf, perf_event_open, keyrings, userfaultfd, io_uring). Most of these
// need a capability the function no longer has anyway; the filter is the
// second lock, and the only one for those that do not (keyctl, bpf's
// unprivileged commands, userfaultfd, io_uring, perf_event_open).
var deniedSyscalls = []string{
	"mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "mount_setattr",
	"fsopen", "fsconfig", "fsmount", "fspick",
	"unshare", "setns",
	"kexec_load", "kexec_file_load", "reboot", "init_module", "finit_module", "delete_module",
	"swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "syslog", "vhangup",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname", "setdomainname",
	"iopl", "ioperm", "open_by_handle_at", "name_to_handle_at", "lookup_dcookie", "uselib",
	"bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd",
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
}

// nsFlags are the clone flags that make namespaces. clone3 passes its
// flags in memory, which a seccomp filter cannot read, so it answers ENOSYS
// and C libraries fall back to clone, whose flags it can.
var nsFlags = []uint64{
	unix.CLONE_NEWNS, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC, unix.CLONE_NEWUSER,
	unix.CLONE_NEWPID, unix.CLONE_NEWNET, unix.CLONE_NEWCGROUP,
}

// policy is assembled once, in a stub before it is ready (so a cold start
// only loads it), and by a test.
var policy = sync.OnceValues(func() ([]bpf.RawInstruction, error) {
	var clone []seccomp.NameWithConditions
	for _, f := range nsFlags {
		clone = append(clone, seccomp.NameWithConditions{Name: "clone",
			Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.BitsSet, Value: f}}})
	}
	p := seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Action: seccomp.ActionErrno, Names: deniedSyscalls, NamesWithCondtions: clone},
			{Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS), Names: []string{"clone3"}},
		},
	}
	insts, err := p.Assemble()
	if err != nil {
		return nil, fmt.Errorf("assemble the seccomp policy: %w", err)
	}
	return bpf.Assemble(insts)
})

// archGuard kills a process that makes a system call through another
// architecture's ABI (int 0x80 on x86-64): the policy above matches
// native syscall numbers only and lets other architectures through.
var archGuard = sync.OnceValues(func() ([]bpf.RawInstruction, error) {
	native, err := arch.GetInfo("")
	if err != nil {
		return nil, err
	}
	return bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 4, Size: 4}, // seccomp_data.arch
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(native.ID), SkipTrue: 1},
		bpf.RetConstant{Val: unix.SECCOMP_RET_KILL_PROCESS},
		bpf.RetConstant{Val: unix.SECCOMP_RET_ALLOW},
	})
})

// loadSeccomp installs both filters on the calling thread (the one that
// will exec the app; no_new_privs must be set).
func loadSeccomp() error {
	for _, f := range []func() ([]bpf.RawInstruction, error){archGuard, policy} {
		raw, err := f()
		if err != nil {
			return err
		}
		if err := loadFilter(raw); err != nil {
			return err
		}
	}
	return nil
}

// loadFilter loads an assembled filter; the library's LoadFilter would
// assemble the policy again on the request path.
func loadFilter(raw []bpf.RawInstruction) error {
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	prog := &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(prog)), 0, 0); err != nil {
		return fmt.Errorf("load seccomp filter: %w", err)
	}
	return nil
}
