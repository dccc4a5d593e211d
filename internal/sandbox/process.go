package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// maxLine is the longest line passed to Spec.Output; longer ones are split.
	maxLine = 256 << 10
	// drainTimeout bounds how long output is read after the process exited
	// and its cgroup was killed. Only a process that escaped both its process
	// group and its cgroup (possible only without cgroups) can keep a pipe open.
	drainTimeout = time.Second
	// removeTimeout bounds the cgroup removal after an exit.
	removeTimeout = 10 * time.Second
	// peakCacheTTL is how long a MaxMemoryMB reading is reused. It is asked
	// after every invocation, and the cgroup file read was 11% of Stoke's
	// CPU under load; a reading up to this old is good enough for a REPORT
	// line, and the value after exit is exact.
	peakCacheTTL = 20 * time.Millisecond
)

type process struct {
	m       *Manager
	id      string
	cmd     *exec.Cmd
	pid     int
	started time.Time
	cg      *group // nil when limits are not enforced
	out     func(stream, line string)
	pipes   []*os.File // read ends: stdout, stderr
	stub    bool       // started by handing the spec to an idle stub
	// prepared: the stub had its limits and view before the start (prepare.go)
	prepared bool
	// nsInit: PID 1 of its own PID namespace, which ignores signals it has
	// no handler for, SIGTERM included (see Stop).
	nsInit bool
	memMB  int
	// setLimitMB is the memory limit SetMemoryMB set (0: still memMB).
	setLimitMB atomic.Int32
	boosted    bool // runs without its CPU quota until EndInitBoost
	canBoost   bool // started with Spec.InitBoost: Boost may lift the quota again
	// adopted: forked by another process (see adopt.go); watched through
	// pidfd, its status comes through status, unless orphaned closes
	// first: its reaper is gone and will not report it.
	adopted      bool
	pidfd        int
	status       chan syscall.WaitStatus
	orphaned     chan struct{}
	orphanedOnce sync.Once
	readers      sync.WaitGroup
	outMu        sync.Mutex // serialises Spec.Output across the two streams
	exited       chan struct{}
	done         chan struct{}

	mu       sync.Mutex
	reaped   bool // set just before the reap; from then on pid and pgid may name someone else
	stopping bool // Stop was called while the process was running
	exit     Exit
	peakMB   int // recorded at exit, before the cgroup goes
	err      error
	// The last reading while running, reused for peakCacheTTL; kept apart
	// from peakMB so a late reading cannot overwrite the exact one at exit.
	cachedPeak int
	cachedAt   time.Time
}

// start runs spec's process; the caller then calls begin.
func start(m *Manager, spec Spec) (_ *process, err error) {
	p := &process{m: m, id: spec.ID, out: spec.Output, done: make(chan struct{}), exited: make(chan struct{}), memMB: spec.MemoryMB}
	if m.h != nil {
		if p.cg, err = m.h.newGroup(spec.ID, spec.MemoryMB); err != nil {
			return nil, fmt.Errorf("start sandbox %s: %w", spec.ID, err)
		}
		defer func() {
			if err != nil {
				_ = p.cg.remove(context.Background())
			}
		}()
		if err := p.boost(spec); err != nil {
			return nil, fmt.Errorf("start sandbox %s: %w", spec.ID, err)
		}
	}

	// A nil Env would hand the instance Stoke's own environment (tokens,
	// paths); an instance gets exactly what the spec says.
	env := spec.Env
	if env == nil {
		env = []string{}
	}
	// Own process group, so Stop reaches the children too. Pdeathsig kills
	// the instance if Stoke dies; the kernel ties it to the OS thread that
	// forked, and the Go runtime only retires threads that exit while locked
	// (LockOSThread), which Stoke never does: startV1 unlocks.
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stdout, stderr *os.File
	mk := func() *exec.Cmd {
		cmd := exec.Command(spec.Args[0], spec.Args[1:]...)
		cmd.Dir, cmd.Env = spec.Dir, env
		cmd.ExtraFiles = spec.Files
		a := *attr
		cmd.SysProcAttr = &a
		if stdout != nil {
			// *os.File outputs go straight to the child: no copying goroutines in exec.
			cmd.Stdout, cmd.Stderr = stdout, stderr
		}
		return cmd
	}
	if p.cg != nil && p.cg.v2 {
		// clone3(CLONE_INTO_CGROUP): in its cgroup from the first instruction.
		dir, err := os.Open(p.cg.dir)
		if err != nil {
			return nil, fmt.Errorf("start sandbox %s: open cgroup: %w", spec.ID, err)
		}
		defer dir.Close()
		attr.UseCgroupFD = true
		attr.CgroupFD = int(dir.Fd())
	}
	var writers []*os.File
	if p.out != nil {
		for range 2 {
			r, w, err := os.Pipe()
			if err != nil {
				closeAll(p.pipes)
				closeAll(writers)
				return nil, fmt.Errorf("start sandbox %s: output pipe: %w", spec.ID, err)
			}
			p.pipes = append(p.pipes, r)
			writers = append(writers, w)
		}
		stdout, stderr = writers[0], writers[1]
	}

	p.started = time.Now()
	var cmd *exec.Cmd
	if p.cg != nil && !p.cg.v2 {
		cmd, err = startV1(mk, p.cg)
	} else {
		cmd = mk()
		err = forkBatch(cmd.Start)
	}
	closeAll(writers) // the child has its copies; EOF comes when it and its children are gone
	if err != nil {
		closeAll(p.pipes)
		return nil, fmt.Errorf("start sandbox %s: %w", spec.ID, err)
	}
	p.cmd, p.pid = cmd, cmd.Process.Pid
	return p, nil
}

// startV1 starts cmd and moves it into g before it runs a single
// instruction of its program: cgroup v1 cannot fork into a cgroup, so the
// child is started under ptrace, which stops it at its execve, joins the
// cgroup while stopped and is detached. Without this, everything the child
// did before the move (forks, memory) would happen in Stoke's cgroup; under
// load that window was measured at up to 15 ms. The ptrace calls must come
// from the thread that forked, hence the locked thread.
//
// Joining a v1 cgroup takes the kernel's cgroup_threadgroup_rwsem for
// writing, which waits for an RCU grace period: 0.2–15 ms here, the bulk of
// Start's cost on v1 (v2 forks straight into the cgroup instead). Mounting
// the v1 hierarchies with the favordynmods option makes it cheap.
func startV1(mk func() *exec.Cmd, g *group) (*exec.Cmd, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := mk()
	cmd.SysProcAttr.Ptrace = true
	if err := forkBatch(cmd.Start); err != nil {
		if !errors.Is(err, syscall.EPERM) {
			return nil, err
		}
		// ptrace is forbidden here (seccomp, Yama): join after the start
		// instead, accepting the window.
		cmd = mk()
		if err := forkBatch(cmd.Start); err != nil {
			return nil, err
		}
		return cmd, joinOrKill(cmd, g)
	}
	pid := cmd.Process.Pid
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WSTOPPED|unix.WEXITED|unix.WNOWAIT, nil)
	for errors.Is(err, unix.EINTR) {
		err = unix.Waitid(unix.P_PID, pid, &info, unix.WSTOPPED|unix.WEXITED|unix.WNOWAIT, nil)
	}
	if err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return nil, fmt.Errorf("wait for exec stop of pid %d: %w", pid, err)
	}
	if err := joinOrKill(cmd, g); err != nil {
		return nil, err
	}
	// Resume without delivering the exec SIGTRAP. ESRCH: it died meanwhile,
	// which the exit path reports.
	if err := unix.PtraceDetach(pid); err != nil && !errors.Is(err, unix.ESRCH) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return nil, fmt.Errorf("resume pid %d: %w", pid, err)
	}
	return cmd, nil
}

func joinOrKill(cmd *exec.Cmd, g *group) error {
	if err := g.add(cmd.Process.Pid); err != nil {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return err
	}
	return nil
}

// begin starts the goroutines that read output and wait for the exit.
func (p *process) begin() {
	streams := []string{"stdout", "stderr"}
	for i, f := range p.pipes {
		p.readers.Add(1)
		go p.read(streams[i], f)
	}
	if p.adopted {
		go p.waitAdopted()
		return
	}
	go p.wait()
}

func (p *process) read(stream string, f *os.File) {
	defer p.readers.Done()
	sc := bufio.NewScanner(f)
	// Start small: most instances log little, and 2×256 KiB per instance adds up.
	sc.Buffer(make([]byte, 4096), maxLine)
	sc.Split(splitLines)
	for sc.Scan() {
		p.outMu.Lock()
		p.out(stream, sc.Text())
		p.outMu.Unlock()
	}
	// A read error (deadline after the drain timeout) ends the stream like EOF.
}

// splitLines is bufio.ScanLines that splits a line longer than maxLine
// instead of failing, and keeps a trailing \r (it is the program's output).
func splitLines(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if len(data) >= maxLine {
		return maxLine, data[:maxLine], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

func (p *process) wait() {
	// Wait for the exit without reaping (WNOWAIT): while the process is a
	// zombie its pid and process group id cannot be reused, so killing the
	// leftovers by pgid below, and Stop racing with this exit, cannot hit a
	// stranger.
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	close(p.exited)
	p.mu.Lock()
	stopped := p.stopping
	// The instance is its leader: whatever it left running dies with it.
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	if p.cg != nil {
		p.cg.killAll()
	}
	p.reaped = true
	p.mu.Unlock()

	werr := p.cmd.Wait()
	exit := Exit{Code: -1, Stopped: stopped}
	var killedBySIGKILL bool
	if st := p.cmd.ProcessState; st != nil {
		ws := st.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			exit.Signal = ws.Signal().String()
			killedBySIGKILL = ws.Signal() == syscall.SIGKILL
		} else {
			exit.Code = ws.ExitStatus()
		}
	} else {
		exit.Signal = "unknown: " + werr.Error()
	}
	exit.Time = time.Now()
	p.finishExit(exit, killedBySIGKILL)
}

// finishExit drains the output, reads the cgroup's verdict and peak, removes
// the cgroup and publishes the exit.
func (p *process) finishExit(exit Exit, killedBySIGKILL bool) {
	for _, f := range p.pipes {
		_ = f.SetReadDeadline(time.Now().Add(drainTimeout))
	}
	p.readers.Wait()
	closeAll(p.pipes)

	var peakMB int
	var err error
	if p.cg != nil {
		exit.OOMKilled = p.cg.oomKilled(killedBySIGKILL)
		if b, rerr := p.cg.peakBytes(); rerr == nil {
			peakMB = usedMB(b, p.limitMB())
		}
		ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
		err = p.cg.remove(ctx)
		cancel()
		if err != nil {
			p.m.log.Error("sandbox: cgroup left behind", "id", p.id, "err", err)
		}
	}
	p.mu.Lock()
	p.exit, p.peakMB, p.err = exit, peakMB, err
	p.mu.Unlock()
	p.m.forget(p)
	close(p.done)
}

func (p *process) Pid() int                { return p.pid }
func (p *process) Started() time.Time      { return p.started }
func (p *process) Exited() <-chan struct{} { return p.exited }
func (p *process) Done() <-chan struct{}   { return p.done }

func (p *process) Exit() Exit {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exit
}

// MaxMemoryMB may be up to peakCacheTTL old while the process runs; once
// Done is closed it is the exact value read at exit.
func (p *process) MaxMemoryMB() int {
	if p.cg == nil {
		return 0
	}
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.peakMB
	default:
	}
	p.mu.Lock()
	if !p.cachedAt.IsZero() && time.Since(p.cachedAt) < peakCacheTTL {
		defer p.mu.Unlock()
		return p.cachedPeak
	}
	p.mu.Unlock()
	b, err := p.cg.peakBytes()
	if err != nil {
		// Removed meanwhile: the exit path recorded the peak first.
		<-p.done
		return p.MaxMemoryMB()
	}
	mb := usedMB(b, p.limitMB())
	p.mu.Lock()
	p.cachedPeak, p.cachedAt = mb, time.Now()
	p.mu.Unlock()
	return mb
}

func (p *process) MemoryMB() int {
	if p.cg == nil {
		return 0
	}
	b, err := p.cg.currentBytes()
	if err != nil {
		return 0
	}
	return usedMB(b, p.limitMB())
}

// Stop sends SIGTERM to the process group, waits up to grace, then kills the
// group and every process in the cgroup and waits until the process was
// reaped, its output drained and its cgroup removed.
func (p *process) Stop(ctx context.Context, grace time.Duration) error {
	p.signal(syscall.SIGTERM, true)
	if p.nsInit && !catches(p.pid, syscall.SIGTERM) {
		// Outside a PID namespace SIGTERM would have killed it; as PID 1 it
		// ignored it. Waiting out the grace would only make Stop slower.
		grace = 0
	}
	if grace > 0 {
		t := time.NewTimer(grace)
		select {
		case <-p.done:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	p.signal(syscall.SIGKILL, false)
	select {
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("stop sandbox %s: %w", p.id, ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return fmt.Errorf("stop sandbox %s: %w", p.id, p.err)
	}
	return nil
}

func (p *process) signal(sig syscall.Signal, first bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return
	}
	if first {
		p.stopping = true
	}
	if p.adopted {
		_ = unix.PidfdSendSignal(p.pidfd, sig, nil, 0)
	}
	_ = syscall.Kill(-p.pid, sig)
	if sig == syscall.SIGKILL && p.cg != nil {
		// Catches processes that left the process group (setsid).
		p.cg.killAll()
	}
}

// boost lifts the CPU quota of a process about to start with Spec.InitBoost.
func (p *process) boost(spec Spec) error {
	if !spec.InitBoost || spec.MemoryMB <= 0 || p.cg == nil {
		return nil
	}
	if err := p.cg.setCPU(spec.MemoryMB, true); err != nil {
		return err
	}
	p.boosted, p.canBoost = true, true
	return nil
}

func (p *process) Boost() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.canBoost || p.boosted || p.reaped {
		return nil
	}
	if err := p.cg.setCPU(p.memMB, true); err != nil {
		return err
	}
	p.boosted = true
	return nil
}

func (p *process) EndInitBoost() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.boosted || p.reaped {
		return nil
	}
	p.boosted = false
	return p.cg.setCPU(p.memMB, false)
}

// SetMemoryMB changes the memory limit of the process's cgroup while it
// runs; its CPU quota stays the one of Spec.MemoryMB. Nothing happens when
// limits are not enforced. Lowering the limit below what the cgroup uses
// fails.
func (p *process) SetMemoryMB(mb int) error {
	if p.cg == nil || p.memMB <= 0 || mb <= 0 {
		return nil
	}
	if err := p.cg.setMemory(p.m.h, mb); err != nil {
		return err
	}
	p.setLimitMB.Store(int32(mb))
	return nil
}

// limitMB is the cgroup's memory limit now: Spec.MemoryMB unless
// SetMemoryMB changed it.
func (p *process) limitMB() int {
	if mb := p.setLimitMB.Load(); mb > 0 {
		return int(mb)
	}
	return p.memMB
}

// usedMB is b bytes of a cgroup's memory use in whole MB, rounded up, and
// at most limitMB (when there is a limit). The kernel lets a cgroup's
// usage, and so its peak, pass the limit by a few pages: it force-charges
// what a task must have to finish dying (an OOM victim's last faults) and
// allocations that may not fail. That is the kernel's bookkeeping, not
// memory the function could use; Lambda's REPORT never shows more than
// the memory size, and neither does Stoke.
func usedMB(b uint64, limitMB int) int {
	mb := int((b + mib - 1) / mib)
	if limitMB > 0 && mb > limitMB {
		return limitMB
	}
	return mb
}

// catches reports whether process pid has a handler for sig (SigCgt in
// /proc/pid/status); true when it cannot tell.
func catches(pid int, sig syscall.Signal) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return true
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("SigCgt:")); ok {
			mask, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64)
			return err != nil || mask&(1<<(uint(sig)-1)) != 0
		}
	}
	return true
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		_ = f.Close()
	}
}
