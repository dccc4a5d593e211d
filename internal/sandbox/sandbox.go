// Package sandbox runs one instance's process group in its own cgroup (memory
// limit, CPU quota in proportion to memory) and, when isolating, as the
// function's own user in its own namespaces with its own view of the
// machine; it captures the output line by line, measures memory and reports
// how the process ended. It knows nothing about HTTP.
package sandbox

import (
	"context"
	"os"
	"time"
)

// MBPerCPU is Lambda's ratio: 1,769 MB of memory buys one full CPU.
const MBPerCPU = 1769

// Spec describes one process to run.
type Spec struct {
	ID       string   // instance id; names the cgroup
	Args     []string // argv; Args[0] looked up like exec.Command does
	Dir      string
	Env      []string // the whole environment, KEY=VALUE
	MemoryMB int      // memory limit and, through MBPerCPU, CPU quota; 0 = no limits
	// InitBoost starts the process without its CPU quota (the memory limit
	// applies); Process.EndInitBoost applies the quota once it is ready.
	InitBoost bool
	// Output receives each line the process writes to stdout or stderr,
	// without the newline. Called from a sandbox goroutine; must not block long.
	Output func(stream string, line string)
	// Files become the process's fds 3, 4, … (the caller keeps and closes
	// its copies).
	Files []*os.File
	// Isolation is who the process runs as and what it sees; required when
	// the Manager isolates (Options.Isolate), ignored otherwise.
	Isolation *Isolation
	// Once says a start of this config is not expected again soon (a
	// python template, which lives as long as its function): no stub is
	// prepared for it afterwards (prepare.go).
	Once bool
}

// Exit says how a process ended.
type Exit struct {
	Code      int    // exit status, -1 when killed by a signal
	Signal    string // e.g. "killed", empty when it exited
	OOMKilled bool   // the kernel killed it for exceeding its memory limit
	Stopped   bool   // Stoke stopped it (Process.Stop)
	// Unreported: an adopted process whose parent ended (or went silent)
	// without reporting its status; Code and Signal say nothing then.
	Unreported bool
	Time       time.Time
}

// Process is a running sandboxed process group.
type Process interface {
	Pid() int
	Started() time.Time
	// Exited is closed as soon as the process has exited, before its
	// status is known (an adopted process's comes from its reaper) and its
	// output drained; Done follows.
	Exited() <-chan struct{}
	// Done is closed once the process has exited and Exit is valid.
	Done() <-chan struct{}
	Exit() Exit
	// MaxMemoryMB is the peak memory use of the whole cgroup so far (0 when
	// limits are not enforced).
	MaxMemoryMB() int
	// MemoryMB is the current memory use of the cgroup.
	MemoryMB() int
	// EndInitBoost applies the CPU quota to a process started with
	// Spec.InitBoost; otherwise it does nothing.
	EndInitBoost() error
	// Boost lifts the CPU quota again, until the next EndInitBoost, of a
	// process started with Spec.InitBoost (a forked python instance's first
	// request finishes what its init began); otherwise it does nothing.
	Boost() error
	// Stop kills the whole process group (SIGTERM, then SIGKILL after grace),
	// waits for it and removes its cgroup. Safe to call more than once.
	Stop(ctx context.Context, grace time.Duration) error
}

// Starter starts processes. Implemented by *Manager.
type Starter interface {
	Start(ctx context.Context, spec Spec) (Process, error)
}
