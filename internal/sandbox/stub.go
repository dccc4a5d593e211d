package sandbox

// Stubs ("stem cells"): the Manager keeps a few idle processes that are
// already inside their own fresh cgroup, in their own process group, with
// their stdout and stderr on the pipes the sandbox reads. Start hands one a
// spec and it execs the function's program in place: same pid, same cgroup,
// same process group. This takes the cgroup v1 join (cgroup.procs write,
// ~12 ms here: it waits for an RCU grace period) and the ptrace dance of
// startV1 off the request path; the app is in its cgroup from its first
// instruction by construction.
//
// A stub is this very binary re-executed with stubEnv set, so the binary's
// main (and every test binary using the sandbox, in TestMain) must call
// MaybeRunStub before anything else. The Manager only makes stubs once this
// process has called MaybeRunStub itself, which proves the binary does.
//
// With isolation (isolate.go) a stub is also cloned into its own
// namespaces and has built the shared part of the function's view before
// it says it is ready.
//
// The control channel is a socketpair at the stub's fd 3:
//
//	stub → Stoke: "R" once it runs MaybeRunStub (ready)
//	Stoke → stub: 4-byte big-endian length, JSON stubRequest, with the
//	              app's extra files and idmapping user namespaces as
//	              SCM_RIGHTS on its first bytes
//	stub → Stoke: EOF when execve succeeded (the socket is close-on-exec),
//	              or a JSON stubError, after which the stub exits 127
//
// EOF for success is how os.StartProcess learns about its own child's exec.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
	stubEnv = "STOKE_SANDBOX_STUB"
	// DefaultStubs is how many idle stubs a Manager keeps by default.
	DefaultStubs = 2
	// stubReadyTimeout bounds a new stub's start (Go runtime and package
	// initialisation of this binary) before it is given up.
	stubReadyTimeout = 10 * time.Second
	maxStubRequest   = 16 << 20
	maxStubFds       = 32
)

// stubNamespaces are the namespaces an isolating stub is cloned into. It is
// PID 1 of its PID namespace, and so is the app it becomes.
const stubNamespaces = syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS

// refillDelay is how long after a stub was used the pool starts making its
// replacement. Making a stub costs ~2 ms of CPU (its Go runtime start), and
// on v1 its cgroup join holds cgroup_threadgroup_rwsem, which every fork,
// thread exit and exec on the host also takes: both would land on the
// just-started app's init. A variable so benchmarks can try other values.
var refillDelay = 50 * time.Millisecond

// stubAware is set once this process ran MaybeRunStub, so its binary, re-run
// as a stub, will act as one instead of doing whatever its main does.
var stubAware atomic.Bool

// stubSeq numbers stub cgroups (stub-<n>) across every Manager of this
// process: they share the parent cgroup (parents), so two Managers each
// counting from 1 would put two stubs in one cgroup stub-1, which either's
// rename or kill would take from the other.
var stubSeq atomic.Uint64

func nextStubName() string {
	return "stub-" + strconv.FormatUint(stubSeq.Add(1), 10)
}

// stub is an idle stub process, ready for a spec.
type stub struct {
	cmd     *exec.Cmd
	flavour string
	cg      *group        // nil when limits are not enforced
	ctl     *net.UnixConn // Stoke's end of the control socketpair
	pipes   []*os.File    // read ends: stdout, stderr
	key     string        // prepared for this config (prepare.go); "" when idle
	boosted bool          // prepared with its CPU quota lifted (init boost)
}

// send writes one length-prefixed request with fds (files keeps them open
// until sent), by the control socket's deadline.
func (s *stub) send(req stubRequest, fds []int, files []*os.File) error {
	if len(fds) > maxStubFds {
		return fmt.Errorf("%d files to pass, at most %d", len(fds), maxStubFds)
	}
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	msg := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(b)), uint32(len(b)))
	msg = append(msg, b...)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	_, _, err = s.ctl.WriteMsgUnix(msg, oob, nil)
	runtime.KeepAlive(files)
	return err
}

// kill ends an idle (or failed) stub and removes its cgroup.
func (s *stub) kill() error {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Wait()
	_ = s.ctl.Close()
	closeAll(s.pipes)
	if s.cg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
		defer cancel()
		return s.cg.remove(ctx)
	}
	return nil
}

// alive reports whether the stub has not exited, without reaping it.
func (s *stub) alive() bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, s.cmd.Process.Pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err == nil && info.Signo == 0 // WNOHANG: no status yet
}

// spawner runs every stub fork on one locked OS thread that never exits.
// Pdeathsig fires when the *thread* that forked a child exits, not the
// process; the Go runtime terminates a thread when a goroutine exits while
// locked to it, which any code in the binary might do. Stubs (and the apps
// they become: Pdeathsig survives exec) must die only with Stoke.
var spawner = sync.OnceValue(func() chan func() {
	ch := make(chan func())
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the process
		for f := range ch {
			f()
		}
	}()
	return ch
})

func onSpawnerThread(f func()) {
	done := make(chan struct{})
	spawner() <- func() { f(); close(done) }
	<-done
}

// newStub starts one stub of a flavour in a new cgroup named name and waits
// until it is ready. The slow v1 join happens here, off the request path.
func (m *Manager) newStub(name, flavour string) (_ *stub, err error) {
	s := &stub{flavour: flavour}
	if m.h != nil {
		if s.cg, err = m.h.newGroup(name, 0); err != nil {
			return nil, fmt.Errorf("make stub: %w", err)
		}
		defer func() {
			if err != nil && s.cmd == nil {
				_ = s.cg.remove(context.Background())
			}
		}()
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("make stub: control socket: %w", err)
	}
	child := os.NewFile(uintptr(fds[1]), "stub-control-child")
	defer child.Close()
	own := os.NewFile(uintptr(fds[0]), "stub-control")
	c, err := net.FileConn(own) // non-blocking, so the waits below can have deadlines
	own.Close()
	if err != nil {
		return nil, fmt.Errorf("make stub: control socket: %w", err)
	}
	s.ctl = c.(*net.UnixConn)
	var writers []*os.File
	defer func() { closeAll(writers) }() // the stub has its copies
	for range 2 {
		r, w, perr := os.Pipe()
		if perr != nil {
			_ = s.ctl.Close()
			closeAll(s.pipes)
			return nil, fmt.Errorf("make stub: output pipe: %w", perr)
		}
		s.pipes, writers = append(s.pipes, r), append(writers, w)
	}

	// /proc/self/exe, not os.Executable's path: the stub must run this very
	// binary even if a deploy replaced the file on disk since Stoke started.
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{os.Args[0]}
	// GOMAXPROCS=1: fewer runtime threads in the stub. execve must kill and
	// wait for every other thread of a process (de_thread), each of which
	// needs a CPU to die on; on this busy VM the stub's exec took a median
	// 2-4 ms instead of ~1 ms. The app gets exactly the spec's env, not this.
	cmd.Env = []string{stubEnv + "=" + flavour, "GOMAXPROCS=1"}
	cmd.Stdout, cmd.Stderr = writers[0], writers[1]
	cmd.ExtraFiles = []*os.File{child} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if flavour != flavourPlain {
		cmd.SysProcAttr.Cloneflags = stubNamespaces
	}
	var dir *os.File
	if s.cg != nil && s.cg.v2 {
		if dir, err = os.Open(s.cg.dir); err != nil {
			_ = s.ctl.Close()
			closeAll(s.pipes)
			return nil, fmt.Errorf("make stub: open cgroup: %w", err)
		}
		defer dir.Close()
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(dir.Fd())
	}
	onSpawnerThread(func() { err = cmd.Start() })
	if err != nil {
		_ = s.ctl.Close()
		closeAll(s.pipes)
		return nil, fmt.Errorf("make stub: %w", err)
	}
	s.cmd = cmd
	fail := func(err error) (*stub, error) {
		_ = s.kill()
		return nil, fmt.Errorf("make stub %d: %w", cmd.Process.Pid, err)
	}
	if s.cg != nil && !s.cg.v2 {
		// The stub runs outside its cgroup until here, which does not
		// matter: it runs no function code before it has joined.
		if err := s.cg.add(cmd.Process.Pid); err != nil {
			return fail(err)
		}
	}
	_ = s.ctl.SetReadDeadline(time.Now().Add(stubReadyTimeout))
	if err, said := s.answer('R'); err != nil {
		if !said {
			err = fmt.Errorf("not ready (does main call sandbox.MaybeRunStub first?): %w", err)
		}
		return fail(err)
	}
	_ = s.ctl.SetReadDeadline(time.Time{})
	return s, nil
}

// answer reads the stub's one-byte answer on its control socket: nil when
// it is want. A stub that failed says why instead (a JSON stubError):
// that error, or what else it said, comes with said set; a failed read
// without.
func (s *stub) answer(want byte) (err error, said bool) {
	var b [1]byte
	if _, err := io.ReadFull(s.ctl, b[:]); err != nil {
		return err, false
	}
	if b[0] == want {
		return nil, false
	}
	rest, _ := io.ReadAll(io.LimitReader(s.ctl, 64<<10))
	var e stubError
	if json.Unmarshal(append(b[:], rest...), &e) == nil {
		return e.asError(), true
	}
	return fmt.Errorf("said %q", b[:]), true
}

// takeStub hands out an idle live stub, or nil when there is none.
func (m *Manager) takeStub() *stub {
	for {
		m.mu.Lock()
		if len(m.stubs) == 0 {
			m.mu.Unlock()
			return nil
		}
		s := m.stubs[len(m.stubs)-1]
		m.stubs = m.stubs[:len(m.stubs)-1]
		m.mu.Unlock()
		if s.alive() {
			return s
		}
		m.log.Warn("sandbox: idle stub died", "pid", s.cmd.Process.Pid)
		_ = s.kill()
	}
}

// pause waits d, or until the Manager closes.
func (m *Manager) pause(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-m.quit:
	}
}

// refillLocked tops the pool up in the background after delay, one stub at
// a time: a burst of starts should not also get a burst of stub starts
// competing for the CPUs. The caller holds m.mu.
func (m *Manager) refillLocked(delay time.Duration) {
	if m.filling || m.closed || m.stubsWant <= 0 || len(m.stubs) >= m.stubsWant {
		return
	}
	m.filling = true
	m.fillers.Add(1)
	go func() {
		defer m.fillers.Done()
		m.pause(delay)
		for {
			m.mu.Lock()
			if m.closed || len(m.stubs) >= m.stubsWant {
				m.filling = false
				m.mu.Unlock()
				return
			}
			name := nextStubName()
			m.mu.Unlock()

			s, err := m.newStub(name, m.poolFlavour())
			m.mu.Lock()
			if err != nil {
				// Do not retry in a loop: Start falls back to the slow path.
				m.stubsWant = 0
				m.filling = false
				m.mu.Unlock()
				m.log.Error("sandbox: cannot make stub processes; cold starts take the slower path", "err", err)
				return
			}
			if m.closed {
				m.filling = false
				m.mu.Unlock()
				_ = s.kill()
				return
			}
			m.stubs = append(m.stubs, s)
			m.mu.Unlock()
		}
	}()
}

// poolFlavour is the flavour of the stubs kept ready.
func (m *Manager) poolFlavour() string {
	if m.opts.Isolate {
		return flavourView
	}
	return flavourPlain
}

// stubExecTimeout bounds how long a stub may take to exec the app once it
// has the spec (building an isolated view takes milliseconds).
var stubExecTimeout = 30 * time.Second

// aLongTimeAgo, as a deadline, interrupts a blocked read or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// stubWait says why waiting on a stub failed: ctx ended, the stub took
// too long, or err itself.
func (m *Manager) stubWait(ctx context.Context, err error) error {
	var ne net.Error
	d, ok := ctx.Deadline()
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case ok && !time.Now().Before(d):
		// The socket's deadline was ctx's, which has passed even if ctx's
		// own timer has not fired yet.
		return context.DeadlineExceeded
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("the stub did not exec the program before its deadline (at most %s): %w", stubExecTimeout, err)
	}
	return err
}

// replyError is the error a stub's reply says.
func replyError(reply []byte) error {
	var e stubError
	if jerr := json.Unmarshal(reply, &e); jerr != nil {
		e.Msg = string(reply)
	}
	return e.asError()
}

// failed reads what a stub that stopped reading its control socket said
// before it exited, if anything (bounded by the socket's deadline).
func (s *stub) failed() (error, bool) {
	reply, _ := io.ReadAll(io.LimitReader(s.ctl, 64<<10))
	if len(reply) == 0 {
		return nil, false
	}
	return replyError(reply), true
}

// startFromStub starts spec in a stub prepared for its config or an idle
// one, or returns nil, nil when there is none ready.
func (m *Manager) startFromStub(ctx context.Context, spec Spec) (_ *process, err error) {
	// Resolve the program as exec.Command would (Stoke's PATH), so both
	// paths fail alike, and no stub is spent on a missing program.
	probe := exec.Command(spec.Args[0], spec.Args[1:]...)
	if probe.Err != nil {
		return nil, fmt.Errorf("start sandbox %s: %w", spec.ID, probe.Err)
	}
	t := m.template(spec, probe.Path, m.poolFlavour())
	s := m.takePrepared(t)
	if s == nil {
		if s = m.takeStub(); s == nil {
			return nil, nil
		}
		defer func() {
			m.mu.Lock()
			m.refillLocked(refillDelay)
			m.mu.Unlock()
		}()
	}
	p, err := m.handOff(ctx, s, spec, t)
	if err == nil {
		// The next start of this config finds a stub prepared for it.
		m.wantPrepared(t, refillDelay)
	}
	return p, err
}

// startInNewStub starts spec in a stub made for it: a build, or a cold
// start that found no idle stub while isolating (an isolated app is only
// ever exec'd by a stub). The new stub's cgroup join and start-up are paid
// here, but no app code runs before it is in its cgroup.
func (m *Manager) startInNewStub(ctx context.Context, spec Spec) (*process, error) {
	probe := exec.Command(spec.Args[0], spec.Args[1:]...)
	if probe.Err != nil {
		return nil, fmt.Errorf("start sandbox %s: %w", spec.ID, probe.Err)
	}
	flavour := flavourView
	if spec.Isolation.Build {
		flavour = flavourBuild
	}
	s, err := m.newStub(nextStubName(), flavour)
	if err != nil {
		return nil, fmt.Errorf("start sandbox %s: %w", spec.ID, err)
	}
	return m.handOff(ctx, s, spec, m.template(spec, probe.Path, flavour))
}

// handOff gives spec to the stub s, idle or prepared for t (the config
// part of spec), and waits until the stub exec'd the program, for at most
// stubExecTimeout or until ctx ends. On failure the stub is gone.
func (m *Manager) handOff(ctx context.Context, s *stub, spec Spec, t *template) (_ *process, err error) {
	defer func() {
		if err != nil {
			if kerr := s.kill(); kerr != nil {
				m.log.Error("sandbox: cgroup left behind", "id", spec.ID, "err", kerr)
			}
		}
	}()
	p := &process{m: m, id: spec.ID, out: spec.Output, done: make(chan struct{}), exited: make(chan struct{}),
		cmd: s.cmd, pid: s.cmd.Process.Pid, cg: s.cg, pipes: s.pipes, stub: true, memMB: spec.MemoryMB,
		nsInit: s.flavour != flavourPlain, prepared: s.key != ""}
	if p.out == nil {
		// The stub's pipes exist already; drain them, as /dev/null would.
		p.out = func(string, string) {}
	}
	p.started = time.Now()
	// A stub that never execs (stopped, wedged in the kernel) must not
	// hold its caller, nor a pool behind it, forever.
	deadline := p.started.Add(stubExecTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = s.ctl.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = s.ctl.SetDeadline(aLongTimeAgo) })
	defer stop()
	if s.key == "" {
		// Its config first (the stub builds the view while Stoke writes
		// its limits), then the instance's part.
		if err := m.sendConfig(s, t, false, deadline); err != nil {
			return nil, fmt.Errorf("start sandbox %s: %w", spec.ID, m.stubWait(ctx, err))
		}
	}
	p.boosted, p.canBoost = s.boosted, s.boosted
	env := spec.Env
	if env == nil {
		env = []string{}
	}
	req := stubRequest{Path: t.path, Args: spec.Args, Env: env, Files: len(spec.Files), NetNS: -1}
	fds := make([]int, 0, len(spec.Files))
	for _, f := range spec.Files {
		fds = append(fds, int(f.Fd()))
	}
	if err := s.send(req, fds, spec.Files); err != nil {
		if e, ok := s.failed(); ok {
			// It failed the config part and said why (a missing cwd).
			return nil, fmt.Errorf("start sandbox %s: %w", spec.ID, e)
		}
		return nil, fmt.Errorf("start sandbox %s: hand spec to stub: %w", spec.ID, m.stubWait(ctx, err))
	}
	if s.cg != nil {
		// Renamed while the stub builds the view and execs, not before:
		// the name is the tree's bookkeeping, which the app's start does
		// not wait for (3 directory renames, ~0.15 ms).
		if err := s.cg.rename(m.h, spec.ID); err != nil && !s.cg.v2 {
			m.log.Warn("sandbox: cannot rename stub cgroup; it keeps its stub name", "id", spec.ID, "cgroup", s.cg.dir, "err", err)
		}
	}
	reply, err := io.ReadAll(s.ctl)
	_ = s.ctl.Close()
	if err != nil && len(reply) > 0 {
		// It said why, then exited with the instance's part unread (which
		// resets the connection): a failed config part.
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("start sandbox %s: read stub reply: %w", spec.ID, m.stubWait(ctx, err))
	}
	if len(reply) > 0 {
		return nil, fmt.Errorf("start sandbox %s: %w", spec.ID, replyError(reply))
	}
	if s.cg != nil {
		// After the exec the stub's memory is released; from here the peak
		// is the app's.
		if err := s.cg.resetPeak(); err != nil {
			m.log.Warn("sandbox: cannot reset peak memory; Max Memory Used may include the stub's", "id", spec.ID, "err", err)
		}
	}
	return p, nil
}
