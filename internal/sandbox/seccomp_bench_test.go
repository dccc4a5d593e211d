package sandbox_test

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/stokehq/stoke/internal/sandbox"
)

// BenchmarkSeccompSyscall is what the functions' seccomp filter costs a
// system call: a child of this test binary makes b.N cheap system calls
// (getppid; a FUTEX_WAKE nobody waits for, the Go runtime's most frequent
// one) on one thread, without a filter, under a filter that allows
// everything (what entering seccomp at all costs) and under the functions'
// policy, as a function's process runs under it. The filter is a linear list of ~55 denied
// numbers, but the kernel (5.11+) caches, per system call number, a filter
// whose answer does not depend on the arguments: an allowed call that is
// not clone never runs the BPF program.
func BenchmarkSeccompSyscall(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("loading a seccomp filter without no_new_privs needs root")
	}
	for _, call := range []string{"getppid", "futex"} {
		for _, filter := range []string{"none", "allow-all", "policy"} {
			b.Run(call+"/"+filter, func(b *testing.B) {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), childEnv+"=syscalls", "STOKE_SYSCALLS="+call,
					"STOKE_SYSCALLS_N="+strconv.Itoa(b.N), "STOKE_SECCOMP="+filter)
				out, err := cmd.CombinedOutput()
				if err != nil {
					b.Fatalf("child: %v\n%s", err, out)
				}
				var ns float64
				if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "ns/call %g", &ns); err != nil {
					b.Fatalf("child said %q: %v", out, err)
				}
				b.ReportMetric(ns, "ns/syscall")
				b.ReportMetric(0, "ns/op") // the child's time is the measure
			})
		}
	}
}

// syscallsChild is the benchmark's child: n system calls on a locked
// thread, under the filter if asked; prints the time per call.
func syscallsChild() {
	runtime.LockOSThread()
	n, _ := strconv.Atoi(os.Getenv("STOKE_SYSCALLS_N"))
	switch os.Getenv("STOKE_SECCOMP") {
	case "allow-all":
		if err := sandbox.LoadAllowAllSeccomp(); err != nil {
			fmt.Println("load:", err)
			os.Exit(1)
		}
	case "policy":
		if err := sandbox.LoadSeccomp(); err != nil {
			fmt.Println("load:", err)
			os.Exit(1)
		}
		// The filter is there: a denied call is refused.
		if err := unix.Unshare(unix.CLONE_NEWUTS); err != unix.EPERM {
			fmt.Println("unshare under the filter:", err)
			os.Exit(1)
		}
	}
	var word uint32
	call := func() { unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0) }
	if os.Getenv("STOKE_SYSCALLS") == "futex" {
		call = func() {
			unix.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafePointer(&word)), futexWakePrivate, 1, 0, 0, 0)
		}
	}
	t := time.Now()
	for range n {
		call()
	}
	fmt.Printf("ns/call %g\n", float64(time.Since(t).Nanoseconds())/float64(max(n, 1)))
}

func unsafePointer(p *uint32) unsafe.Pointer { return unsafe.Pointer(p) }

const futexWakePrivate = 1 | 128 // FUTEX_WAKE | FUTEX_PRIVATE_FLAG
