package sandbox

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Instances run under SCHED_BATCH, with their nice value unchanged.
//
// Why: every instance is in a CPU cgroup of its own (its quota), and a
// wake-up across CPU cgroups — Stoke writing a request to an instance, the
// instance writing its answer back — preempts the waker on this kernel's
// scheduler. Under load each side then runs for a request or less before it
// is switched out: behind a proxy at 64 connections, an app in a CPU cgroup
// of its own switched ~2.5 times a request instead of ~0.8 and spent about
// twice the CPU per request, while the cgroup's quota and weight made no
// difference (docs/BENCHMARKS.md, "SCHED_BATCH"). A SCHED_BATCH task does
// not preempt on wake-up: it runs when the waker blocks or its slice ends,
// so requests batch as they do when both sides share a group. It changes
// nothing on an idle CPU, which is where a request waits at low load.
//
// It is a default, not a limit: sched_setscheduler is not filtered, and a
// function may set SCHED_OTHER again (an unprivileged thread may move
// between the two), at its own cost only.

// settable is attr as sched_setattr takes it back: policy, priority, nice
// value and SCHED_RESET_ON_FORK (sched_getattr also reports what may not be
// set without its own flags, utilisation clamps).
func settable(attr *unix.SchedAttr) *unix.SchedAttr {
	return &unix.SchedAttr{Policy: attr.Policy, Priority: attr.Priority, Nice: attr.Nice,
		Flags: attr.Flags & unix.SCHED_FLAG_RESET_ON_FORK}
}

// setBatch makes the calling thread SCHED_BATCH, its nice value kept, and
// returns what the thread had before (nil if it was SCHED_BATCH already).
// What the thread then execs, or forks, inherits the policy, as does every
// thread that makes.
func setBatch() (old *unix.SchedAttr, err error) {
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return nil, fmt.Errorf("read the scheduling policy: %w", err)
	}
	if attr.Policy == unix.SCHED_BATCH {
		return nil, nil
	}
	batch := settable(attr)
	batch.Policy, batch.Priority = unix.SCHED_BATCH, 0
	if err := unix.SchedSetAttr(0, batch, 0); err != nil {
		return nil, fmt.Errorf("set SCHED_BATCH: %w", err)
	}
	return attr, nil
}

// forkBatch calls fork, which must fork from the calling thread (exec.Cmd's
// Start does), with that thread SCHED_BATCH, and then puts the thread's
// policy back. The thread is always unlocked again, never retired: an
// instance's Pdeathsig is tied to the thread that forked it (process.go).
func forkBatch(fork func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old, err := setBatch()
	if err != nil || old == nil {
		return fork() // under Stoke's own policy: slower under load, not wrong
	}
	// Stoke's thread goes back to its own policy; if that failed it would
	// stay SCHED_BATCH, which only makes it yield sooner.
	defer unix.SchedSetAttr(0, settable(old), 0)
	return fork()
}
