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
// The control channel is a socketpair at the stub's fd 3:
//
//	stub → Stoke: "R" once it runs MaybeRunStub (ready)
//	Stoke → stub: 4-byte big-endian length, JSON stubRequest
//	stub → Stoke: EOF when execve succeeded (fd 3 is close-on-exec by then),
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
)

// refillDelay is how long after a stub was used the pool starts making its
// replacement. Making a stub costs ~2 ms of CPU (its Go runtime start), and
// on v1 its cgroup join holds cgroup_threadgroup_rwsem, which every fork,
// thread exit and exec on the host also takes: both would land on the
// just-started app's init. A variable so benchmarks can try other values.
var refillDelay = 50 * time.Millisecond

// stubAware is set once this process ran MaybeRunStub, so its binary, re-run
// as a stub, will act as one instead of doing whatever its main does.
var stubAware atomic.Bool

type stubRequest struct {
	Path string   // resolved like exec.Command does, by Stoke
	Args []string // argv
	Env  []string
	Dir  string
}

type stubError struct {
	Op, Path string
	Errno    int // syscall.Errno; 0 when the error was not one
	Msg      string
}

// MaybeRunStub turns this process into a sandbox stub when Stoke started it
// as one, and never returns then. Otherwise it returns at once. Call it first
// thing in main (and in TestMain of tests that start sandboxed processes):
// everything before it runs in every stub.
func MaybeRunStub() {
	if os.Getenv(stubEnv) == "" {
		stubAware.Store(true)
		return
	}
	os.Exit(runStub())
}

func runStub() int {
	// Exec from the thread group leader: exec from another thread makes the
	// kernel swap it with the leader first (de_thread), which costs more.
	runtime.LockOSThread()
	ctl := os.NewFile(3, "stoke-stub-control")
	if _, err := ctl.Write([]byte{'R'}); err != nil {
		return 1
	}
	var n uint32
	if err := binary.Read(ctl, binary.BigEndian, &n); err != nil || n > maxStubRequest {
		return 0 // EOF: the Manager closed, or Stoke is gone
	}
	buf := make([]byte, n)
	var req stubRequest
	if _, err := io.ReadFull(ctl, buf); err != nil {
		return 0
	}
	if err := json.Unmarshal(buf, &req); err != nil {
		return stubFail(ctl, "decode", "", err)
	}
	// Close-on-exec: the app must not inherit the control socket, and its
	// closing at exec tells Stoke the exec worked.
	syscall.CloseOnExec(3)
	if req.Dir != "" {
		if err := syscall.Chdir(req.Dir); err != nil {
			return stubFail(ctl, "chdir", req.Dir, err)
		}
	}
	// Exec replaces the stub's env with exactly req.Env (stubEnv included
	// nowhere) and restores the RLIMIT_NOFILE the Go runtime raised.
	err := syscall.Exec(req.Path, req.Args, req.Env)
	return stubFail(ctl, "fork/exec", req.Path, err)
}

func stubFail(ctl *os.File, op, path string, err error) int {
	e := stubError{Op: op, Path: path, Msg: err.Error()}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		e.Errno = int(errno)
	}
	b, _ := json.Marshal(e)
	_, _ = ctl.Write(b)
	return 127
}

// asError rebuilds the stub's failure as the *os.PathError os/exec would
// have returned, so errors.Is(err, fs.ErrNotExist) and friends still work.
func (e stubError) asError() error {
	if e.Errno != 0 {
		return &os.PathError{Op: e.Op, Path: e.Path, Err: syscall.Errno(e.Errno)}
	}
	return fmt.Errorf("%s %s: %s", e.Op, e.Path, e.Msg)
}

// stub is an idle stub process, ready for a spec.
type stub struct {
	cmd   *exec.Cmd
	cg    *group     // nil when limits are not enforced
	ctl   *os.File   // Stoke's end of the control socketpair
	pipes []*os.File // read ends: stdout, stderr
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

// newStub starts one stub in a new cgroup named name and waits until it is
// ready. The slow v1 join happens here, off the request path.
func (m *Manager) newStub(name string) (_ *stub, err error) {
	s := &stub{}
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
	// Non-blocking, so the ready wait below can have a deadline.
	_ = syscall.SetNonblock(fds[0], true)
	s.ctl = os.NewFile(uintptr(fds[0]), "stub-control")
	child := os.NewFile(uintptr(fds[1]), "stub-control-child")
	defer child.Close()
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
	cmd.Env = []string{stubEnv + "=1", "GOMAXPROCS=1"}
	cmd.Stdout, cmd.Stderr = writers[0], writers[1]
	cmd.ExtraFiles = []*os.File{child} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
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
	var b [1]byte
	if _, err := io.ReadFull(s.ctl, b[:]); err != nil || b[0] != 'R' {
		if err == nil {
			err = fmt.Errorf("said %q", b[:])
		}
		return fail(fmt.Errorf("not ready (does main call sandbox.MaybeRunStub first?): %w", err))
	}
	_ = s.ctl.SetReadDeadline(time.Time{})
	return s, nil
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
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-m.quit:
				t.Stop()
			}
		}
		for {
			m.mu.Lock()
			if m.closed || len(m.stubs) >= m.stubsWant {
				m.filling = false
				m.mu.Unlock()
				return
			}
			m.stubSeq++
			name := "stub-" + strconv.FormatUint(m.stubSeq, 10)
			m.mu.Unlock()

			s, err := m.newStub(name)
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

// startFromStub starts spec in an idle stub, or returns nil, nil when there
// is none ready.
func (m *Manager) startFromStub(spec Spec) (_ *process, err error) {
	s := m.takeStub()
	if s == nil {
		return nil, nil
	}
	// Resolve the program as exec.Command would (Stoke's PATH), so both
	// paths fail alike, and the stub is not spent on a missing program.
	probe := exec.Command(spec.Args[0], spec.Args[1:]...)
	m.mu.Lock()
	if probe.Err != nil && !m.closed {
		m.stubs = append(m.stubs, s)
		s = nil
	}
	m.mu.Unlock()
	if probe.Err != nil {
		if s != nil {
			_ = s.kill()
		}
		return nil, fmt.Errorf("start sandbox %s: %w", spec.ID, probe.Err)
	}
	defer func() {
		m.mu.Lock()
		m.refillLocked(refillDelay)
		m.mu.Unlock()
		if err != nil {
			if kerr := s.kill(); kerr != nil {
				m.log.Error("sandbox: cgroup left behind", "id", spec.ID, "err", kerr)
			}
		}
	}()
	p := &process{m: m, id: spec.ID, out: spec.Output, done: make(chan struct{}),
		cmd: s.cmd, pid: s.cmd.Process.Pid, cg: s.cg, pipes: s.pipes, stub: true, memMB: spec.MemoryMB}
	if s.cg != nil {
		if err := s.cg.setLimits(m.h, spec.MemoryMB); err != nil {
			return nil, fmt.Errorf("start sandbox %s: %w", spec.ID, err)
		}
		if err := p.boost(spec); err != nil {
			return nil, fmt.Errorf("start sandbox %s: %w", spec.ID, err)
		}
		if err := s.cg.rename(m.h, spec.ID); err != nil && !s.cg.v2 {
			m.log.Warn("sandbox: cannot rename stub cgroup; it keeps its stub name", "id", spec.ID, "cgroup", s.cg.dir, "err", err)
		}
	}
	env := spec.Env
	if env == nil {
		env = []string{}
	}
	req, err := json.Marshal(stubRequest{Path: probe.Path, Args: spec.Args, Env: env, Dir: spec.Dir})
	if err != nil {
		return nil, fmt.Errorf("start sandbox %s: %w", spec.ID, err)
	}
	msg := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(req)), uint32(len(req)))
	msg = append(msg, req...)

	if p.out == nil {
		// The stub's pipes exist already; drain them, as /dev/null would.
		p.out = func(string, string) {}
	}
	p.started = time.Now()
	if _, err := s.ctl.Write(msg); err != nil {
		return nil, fmt.Errorf("start sandbox %s: hand spec to stub: %w", spec.ID, err)
	}
	reply, err := io.ReadAll(s.ctl)
	_ = s.ctl.Close()
	if err != nil {
		return nil, fmt.Errorf("start sandbox %s: read stub reply: %w", spec.ID, err)
	}
	if len(reply) > 0 {
		var e stubError
		if jerr := json.Unmarshal(reply, &e); jerr != nil {
			e.Msg = string(reply)
		}
		return nil, fmt.Errorf("start sandbox %s: %w", spec.ID, e.asError())
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
