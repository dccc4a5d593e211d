package sandbox

// Adoption: an instance forked from a Python template is not Stoke's child
// and was not exec'd by Stoke, so Start cannot place it. Prepare makes its
// cgroup and output pipes ahead of the fork; the forker hands the pipes'
// write ends to the child; Adopt moves the forked pid into the cgroup (the
// child waits for a go-ahead before it runs any of the function's code) and
// then watches it like a started process. Since Stoke cannot wait(2) for a
// grandchild, the exit is seen through a pidfd, and its status comes from
// whoever reaps the child (the template), through Adopted.Reaped.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// reaperTimeout bounds how long an adopted process's exit waits for its
// status from a reaper that is still there (Orphaned ends the wait at once
// when it is not). The reaper reports as soon as it runs, however loaded
// the machine, so this is for one that stopped reporting — a python
// template is the function's own code — and costs only that function's
// exits a late, unknown status.
const reaperTimeout = 10 * time.Second

// Foster is a cgroup and output pipes waiting for a forked process.
type Foster struct {
	p *process
	// Stdout and Stderr are the write ends the forked child must use as its
	// fds 1 and 2. Adopt and Abandon close Stoke's copies.
	Stdout, Stderr *os.File
	once           sync.Once
}

// Adopted is a forked process placed in its own cgroup.
type Adopted interface {
	Process
	// Reaped reports the wait status the process's parent reaped.
	Reaped(ws syscall.WaitStatus)
	// Orphaned says the process's parent is gone without reporting its
	// status, and never will: its exit, whenever it comes, is known only
	// as an exit.
	Orphaned()
}

// Prepare makes spec's cgroup (spec.Args is unused) and output pipes for a
// process that another process will fork.
func (m *Manager) Prepare(ctx context.Context, spec Spec) (_ *Foster, err error) {
	if err := m.reserve(ctx, spec.ID); err != nil {
		return nil, err
	}
	defer func() {
		m.starting.Done()
		if err != nil {
			m.mu.Lock()
			delete(m.procs, spec.ID)
			m.mu.Unlock()
		}
	}()
	p := &process{m: m, id: spec.ID, out: spec.Output, done: make(chan struct{}), exited: make(chan struct{}), memMB: spec.MemoryMB,
		adopted: true, pidfd: -1, status: make(chan syscall.WaitStatus, 1), orphaned: make(chan struct{})}
	if p.out == nil {
		p.out = func(string, string) {}
	}
	if m.h != nil {
		if p.cg, err = m.h.newGroup(spec.ID, spec.MemoryMB); err != nil {
			return nil, fmt.Errorf("prepare sandbox %s: %w", spec.ID, err)
		}
		if err := p.boost(spec); err != nil {
			_ = p.cg.remove(context.Background())
			return nil, fmt.Errorf("prepare sandbox %s: %w", spec.ID, err)
		}
	}
	f := &Foster{p: p}
	var writers []*os.File
	for range 2 {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(p.pipes)
			closeAll(writers)
			if p.cg != nil {
				_ = p.cg.remove(context.Background())
			}
			return nil, fmt.Errorf("prepare sandbox %s: output pipe: %w", spec.ID, err)
		}
		p.pipes = append(p.pipes, r)
		writers = append(writers, w)
	}
	f.Stdout, f.Stderr = writers[0], writers[1]
	return f, nil // procs keeps the id reserved (nil) until Adopt or Abandon
}

// reserve claims id for a Start or Prepare; the caller calls m.starting.Done.
func (m *Manager) reserve(ctx context.Context, id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsRune(id, '/') {
		return fmt.Errorf("start sandbox: invalid instance id %q", id)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start sandbox %s: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("start sandbox %s: manager is closed", id)
	}
	if _, dup := m.procs[id]; dup {
		return fmt.Errorf("start sandbox %s: an instance with this id is running", id)
	}
	m.procs[id] = nil
	m.starting.Add(1)
	return nil
}

// Adopt moves pid (forked with f's pipes, its own process group leader)
// into f's cgroup and starts watching it. The child must not run the
// function's code before Adopt returns. On error the pid is killed.
func (f *Foster) Adopt(pid int) (Adopted, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		f.closeWriters()
		f.abandon()
		return nil, fmt.Errorf("adopt pid %d into sandbox %s: pidfd: %w", pid, f.p.id, err)
	}
	return f.AdoptPidfd(fd)
}

// AdoptPidfd is Adopt for the process a pidfd refers to, which it takes
// over. A forker in its own PID namespace (an isolated template) knows its
// child by a pid Stoke cannot use; it passes a pidfd instead.
func (f *Foster) AdoptPidfd(fd int) (Adopted, error) {
	p := f.p
	f.closeWriters()
	pid, err := pidfdPid(fd)
	if err != nil {
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		_ = unix.Close(fd)
		f.abandon()
		return nil, fmt.Errorf("adopt into sandbox %s: %w", p.id, err)
	}
	p.pidfd, p.pid = fd, pid
	if p.cg != nil {
		if err := p.cg.add(pid); err != nil {
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			f.abandon()
			return nil, fmt.Errorf("adopt into sandbox %s: %w", p.id, err)
		}
		if p.cg.v2 {
			// v2 has no fork-into-cgroup for a process that forks itself;
			// join by writing cgroup.procs like v1.
			if err := os.WriteFile(p.cg.dir+"/cgroup.procs", []byte(strconv.Itoa(pid)), 0); err != nil {
				_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
				f.abandon()
				return nil, fmt.Errorf("adopt pid %d into cgroup %s: %w", pid, p.cg.dir, err)
			}
		}
	}
	p.started = time.Now()
	p.m.mu.Lock()
	p.m.procs[p.id] = p
	p.m.mu.Unlock()
	p.begin()
	return p, nil
}

// waitExit returns once the process of pidfd has exited. It waits in Go's
// poller, not in a blocking poll(2): a thousand idle forked instances held
// a thousand threads that way.
func waitExit(pidfd int) {
	exited := func(fd uintptr) bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return n > 0 || (err != nil && !errors.Is(err, unix.EINTR))
	}
	// A non-blocking duplicate for the poller (os.NewFile registers only
	// those); pidfd itself stays open for signals until the caller closes it.
	d, err := unix.FcntlInt(uintptr(pidfd), unix.F_DUPFD_CLOEXEC, 0)
	if err == nil {
		if err = unix.SetNonblock(d, true); err != nil {
			_ = unix.Close(d)
		}
	}
	if err == nil {
		f := os.NewFile(uintptr(d), "pidfd")
		defer f.Close()
		if rc, err := f.SyscallConn(); err == nil && rc.Read(exited) == nil {
			return
		}
	}
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// Abandon gives up the prepared sandbox (the fork failed).
func (f *Foster) Abandon() {
	f.closeWriters()
	f.abandon()
}

func (f *Foster) closeWriters() {
	f.once.Do(func() {
		_ = f.Stdout.Close()
		_ = f.Stderr.Close()
	})
}

func (f *Foster) abandon() {
	p := f.p
	closeAll(p.pipes)
	if p.pidfd >= 0 {
		_ = unix.Close(p.pidfd)
	}
	if p.cg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
		if err := p.cg.remove(ctx); err != nil {
			p.m.log.Error("sandbox: cgroup left behind", "id", p.id, "err", err)
		}
		cancel()
	}
	p.m.mu.Lock()
	if q, ok := p.m.procs[p.id]; ok && (q == nil || q == p) {
		delete(p.m.procs, p.id)
	}
	p.m.mu.Unlock()
}

// pidfdPid is the pid, in Stoke's PID namespace, of the process a pidfd
// refers to (-1 in fdinfo once it has been reaped).
func pidfdPid(fd int) (int, error) {
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0, fmt.Errorf("read pidfd info: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Pid:"); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || pid <= 0 {
				return 0, fmt.Errorf("pidfd of a process that is gone (Pid: %s)", strings.TrimSpace(v))
			}
			return pid, nil
		}
	}
	return 0, errors.New("fd is not a pidfd")
}

func (p *process) Reaped(ws syscall.WaitStatus) {
	select {
	case p.status <- ws:
	default:
	}
}

func (p *process) Orphaned() { p.orphanedOnce.Do(func() { close(p.orphaned) }) }

// awaitStatus waits for the status the reaper reports; false when the
// reaper is gone without reporting it, or stopped reporting.
func (p *process) awaitStatus() (syscall.WaitStatus, bool) {
	t := time.NewTimer(reaperTimeout)
	defer t.Stop()
	select {
	case ws := <-p.status:
		return ws, true
	case <-p.orphaned:
	case <-t.C:
		p.m.log.Warn("sandbox: the parent of an adopted process did not report its exit status", "id", p.id, "waited", reaperTimeout)
	}
	select { // reported just before the orphaning: select may have picked either
	case ws := <-p.status:
		return ws, true
	default:
		return 0, false
	}
}

// waitAdopted is wait for a process Stoke did not fork: the pidfd turns
// readable at its exit, and the status comes through Reaped.
func (p *process) waitAdopted() {
	waitExit(p.pidfd)
	close(p.exited)
	p.mu.Lock()
	stopped := p.stopping
	p.reaped = true
	if p.cg != nil {
		p.cg.killAll() // whatever it left running dies with it
	}
	p.mu.Unlock()
	_ = unix.Close(p.pidfd)

	exit := Exit{Code: -1, Stopped: stopped, Signal: "unknown (its parent did not report it)", Unreported: true}
	var killedBySIGKILL bool
	if ws, ok := p.awaitStatus(); ok {
		exit.Signal, exit.Unreported = "", false
		if ws.Signaled() {
			exit.Signal = ws.Signal().String()
			killedBySIGKILL = ws.Signal() == syscall.SIGKILL
		} else {
			exit.Code = ws.ExitStatus()
		}
	}
	exit.Time = time.Now()
	p.finishExit(exit, killedBySIGKILL)
}
