package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// cgThread forks processes from one OS thread that sits in a cgroup v1 cpu
// group beside Stoke's own (stoke/stokebench-<pid>): a bare start that
// shares the CPU the way an instance does. On a shared host the stoke/
// tree holds every Stoke's instances (other engineers' tests included),
// and one group's weight is split among them all, while a bare exec in the
// root group competes as one task among the host's: under load the same
// binary starts about twice as slowly in there (docs/BENCHMARKS.md). A
// child inherits the cgroup of the thread that forked it; the thread is
// moved once, so no start waits for a cgroup migration.
type cgThread struct {
	dir  string
	ch   chan func()
	done chan struct{}
}

// newCgThread returns nil, nil where there is no v1 cpu hierarchy to use
// (cgroup v2, not root).
func newCgThread() (*cgThread, error) {
	base := "/sys/fs/cgroup/cpu/stoke"
	if _, err := os.Stat(base); err != nil {
		if err := os.MkdirAll(base, 0o755); err != nil {
			return nil, nil
		}
	}
	c := &cgThread{dir: filepath.Join(base, "stokebench-"+strconv.Itoa(os.Getpid())), ch: make(chan func()), done: make(chan struct{})}
	if err := os.Mkdir(c.dir, 0o755); err != nil {
		return nil, nil
	}
	started := make(chan error, 1)
	go func() {
		defer close(c.done)
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		tid := strconv.Itoa(syscall.Gettid())
		if err := os.WriteFile(filepath.Join(c.dir, "tasks"), []byte(tid), 0); err != nil {
			started <- err
			return
		}
		started <- nil
		for f := range c.ch {
			f()
		}
	}()
	if err := <-started; err != nil {
		os.Remove(c.dir)
		return nil, fmt.Errorf("join %s: %w", c.dir, err)
	}
	return c, nil
}

// run runs f (which forks) on the thread in the cgroup.
func (c *cgThread) run(f func()) {
	done := make(chan struct{})
	c.ch <- func() { f(); close(done) }
	<-done
}

// close ends the thread and removes the cgroup once its last task is gone.
func (c *cgThread) close() {
	close(c.ch)
	<-c.done
	rmdirWait(c.dir)
}

// start starts cmd, forked on c's thread (in its cgroup) when c is not
// nil, and says when: the bare starts' clocks begin there.
func (c *cgThread) start(cmd *exec.Cmd) (time.Time, error) {
	var t0 time.Time
	var err error
	start := func() { t0 = time.Now(); err = cmd.Start() }
	if c != nil {
		c.run(start)
	} else {
		start()
	}
	return t0, err
}
