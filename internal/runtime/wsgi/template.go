package wsgirt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/sandbox"
)

// template is the process instances are forked from: the shim in template
// mode, in its own sandbox (the function's memory limit, no CPU quota: its
// start-up is Stoke's preparation, shown apart from instances' cold starts).
type template struct {
	rt     *Runtime
	id     string
	proc   sandbox.Process
	ctl    *net.UnixConn // a socketpair with the template's fd 3
	initMs float64
	last   runtime.LastLines
	python PythonInfo
	// warning says why the warm-up request was refused (a 4xx), if it was.
	warning string

	wmu sync.Mutex // one fork request on the wire at a time
	mu  sync.Mutex
	// forks waits for the template's answer to a fork request, by instance id.
	forks map[string]chan forkReply
	// children are the adopted forks, by pid, to hand them their exit status;
	// pending are forks handed to a caller and not yet adopted; early keeps
	// a status of one of them that came before its adoption finished.
	pending  map[int]bool
	children map[int]sandbox.Adopted
	early    map[int]syscall.WaitStatus
	dead     chan struct{} // the control connection ended
	// live counts forks asked for and not yet exited: each is allowed
	// forkAllowanceMB more in the template's memory limit (forkAllowance).
	live int
}

// forkAllowanceMB is how much more memory the template may use per live
// fork. A fork's page tables and the pages it writes before Stoke moves it
// into its own cgroup are charged to the template's cgroup, and stay
// charged there until the fork exits (neither cgroup version moves them):
// 1.6 MB per fork for the Django example (0.3 MB page tables, 1.3 MB
// copied pages), which made a 128 MB template's fiftieth fork its last.
const forkAllowanceMB = 4

// limiter is a sandboxed process whose memory limit can change.
type limiter interface{ SetMemoryMB(int) error }

// allowLocked moves the template's memory limit to the function's memory
// plus the allowance of its live forks, after changing live by delta.
// Called with t.mu held. A limit that cannot be lowered yet (the exited
// fork's pages not freed) is lowered at the next change.
func (t *template) allowLocked(delta int) {
	t.live = max(t.live+delta, 0)
	l, ok := t.proc.(limiter)
	if !ok {
		return
	}
	if err := l.SetMemoryMB(t.rt.o.Function.Memory + forkAllowanceMB*t.live); err != nil && delta > 0 {
		t.rt.o.Logger.Warn("raise the python template's memory limit for a fork", "template", t.id, "err", err)
	}
}

type forkReply struct {
	pid   int // in the template's PID namespace: how its exit reports name it
	pidfd int // the child, for Stoke (Adopt)
	err   error
}

type ctlMsg struct {
	Op     string  `json:"op"`
	ID     string  `json:"id"`
	Pid    int     `json:"pid"`
	Status int     `json:"status"`
	Error  string  `json:"error"`
	InitMs float64 `json:"init_ms"`
	errorPayload
	WarmupStatus  int    `json:"warmup_status"`
	WarmupHost    string `json:"warmup_host"`
	WarmupWarning string `json:"warmup_warning"`
}

// template returns the running template, starting one if there is none or
// the last one died.
func (rt *Runtime) template(ctx context.Context) (*template, error) {
	// tplMu lets one caller start a template while the others wait for it;
	// rt.mu stays free for the short reads (Snapshot, the spares) meanwhile.
	rt.tplMu.Lock()
	defer rt.tplMu.Unlock()
	rt.mu.Lock()
	closed, t := rt.closed, rt.tpl
	rt.mu.Unlock()
	if closed {
		return nil, errShuttingDown
	}
	if t != nil {
		select {
		case <-t.dead:
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = t.stop(sctx)
			cancel()
			why := runtime.ExitError(t.proc.Exit(), rt.o.Function.Memory, "").Message
			rt.o.Logger.Warn("python template died; starting a new one", "function", rt.o.Function.Name, "template", t.id, "err", why)
			t.output("platform", "TEMPLATE "+t.id+" died ("+why+"); starting a new one")
		default:
			return t, nil
		}
	}
	t, err := rt.startTemplate(ctx, rt.o.Function.Name+"-"+rt.o.Version+"-template-"+strconv.FormatUint(sandboxSeq.Add(1), 10))
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		if err == nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = t.stop(sctx)
			cancel()
		}
		return nil, errShuttingDown
	}
	rt.tplSeq++
	rt.tpl = t // nil when it failed: the next start tries again
	rt.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return t, nil
}

var errShuttingDown = runtime.Errorf("Runtime.InitError", http.StatusServiceUnavailable, "the function version is shutting down")

func (rt *Runtime) startTemplate(ctx context.Context, id string) (*template, error) {
	f := rt.o.Function
	// The control connection is a socketpair whose other end is the
	// template's fd 3: nobody else can connect to it (a named or abstract
	// socket would take the first comer).
	ctl, child, err := socketpair(unix.SOCK_SEQPACKET, "template control")
	if err != nil {
		return nil, runtime.Errorf("Runtime.InitError", http.StatusBadGateway, "connect to the template: %v", err)
	}
	t := &template{rt: rt, id: id, ctl: ctl, forks: map[string]chan forkReply{}, children: map[int]sandbox.Adopted{},
		pending: map[int]bool{}, early: map[int]syscall.WaitStatus{}, dead: make(chan struct{})}
	env := rt.env(id, "template")
	t0 := time.Now()
	sctx, cancel := context.WithTimeout(ctx, runtime.InitTimeout(f)) // starting is part of init
	defer cancel()
	proc, err := rt.o.Sandbox.Start(sctx, sandbox.Spec{
		ID: id, Args: rt.args(), Dir: f.Cwd, Env: env, Files: []*os.File{child},
		MemoryMB: f.Memory, InitBoost: true, Output: t.output, Isolation: rt.o.Isolation,
		Once: true, // its forks are the cold starts; a template starts once per deploy
	})
	child.Close()
	if err != nil {
		ctl.Close()
		return nil, rt.startError(ctx, id, err)
	}
	t.proc = proc
	fail := func(cause error) (*template, error) {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		t.ctl.Close()
		_ = proc.Stop(sctx, 0)
		var re *runtime.Error
		switch {
		case errors.As(cause, &re):
			return nil, re
		case ctx.Err() != nil:
			return nil, fmt.Errorf("start python template %s: %w", id, ctx.Err())
		case errors.Is(cause, context.DeadlineExceeded):
			return nil, runtime.Errorf("Runtime.InitError", http.StatusBadGateway,
				"the app did not import and warm up within the init limit of %s (python: %s); last output: %s", f.InitTimeout, rt.interpreter(), t.last.String())
		}
		return nil, runtime.Errorf("Runtime.InitError", http.StatusBadGateway, "the python template did not start (%v; %s; python: %s); last output: %s",
			cause, runtime.ExitError(proc.Exit(), f.Memory, "").Message, rt.interpreter(), t.last.String())
	}
	ictx, cancel := context.WithTimeout(ctx, f.InitTimeout)
	defer cancel()
	stop := context.AfterFunc(ictx, func() { _ = ctl.SetReadDeadline(time.Unix(1, 0)) })
	m, err := t.read()
	stop()
	if err != nil {
		if ictx.Err() != nil {
			return fail(ictx.Err())
		}
		return fail(err)
	}
	switch m.Op {
	case "ready":
	case "error":
		return fail(initError(m.errorPayload))
	default:
		return fail(fmt.Errorf("protocol: %q before ready", m.Op))
	}
	t.initMs = float64(time.Since(t0).Microseconds()) / 1000
	t.python = m.Python
	line := fmt.Sprintf("TEMPLATE %s ready: import and warm-up (GET %s, Host %s → %d) took %s ms (%.2f ms in Python), python %s, %d MB",
		id, f.Readiness.Path, m.WarmupHost, m.WarmupStatus, msString(time.Since(t0)), m.InitMs, m.Python, proc.MemoryMB())
	t.output("platform", line)
	rt.o.Logger.Info("python template ready", "function", f.Name, "template", id, "init", time.Since(t0).Round(time.Millisecond),
		"memory_mb", proc.MemoryMB(), "python", m.Python.String())
	if m.WarmupWarning != "" {
		// The snapshot then holds an app that ran little more than its
		// middleware: every instance pays for the rest on its first request.
		t.warning = m.WarmupWarning + "; the snapshot warmed almost nothing (no URL routing, views or templates ran): " + warmupAdvice(m.WarmupStatus)
		t.output("platform", "WARNING "+t.warning)
		rt.o.Logger.Warn("python warm-up refused", "function", f.Name, "template", id, "why", t.warning)
	}
	go t.loop()
	return t, nil
}

func (t *template) output(stream, line string) {
	t.last.Add(line)
	if out := t.rt.o.Output; out != nil {
		out(t.id, stream, line)
	}
}

func (t *template) read() (ctlMsg, error) {
	m, fds, err := t.readFds()
	for _, fd := range fds {
		unix.Close(fd)
	}
	return m, err
}

// readFds reads one control message and the fds that came with it (a
// forked child's pidfd), which the caller closes.
func (t *template) readFds() (ctlMsg, []int, error) {
	buf := make([]byte, 1<<16)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := t.ctl.ReadMsgUnix(buf, oob)
	var fds []int
	if oobn > 0 {
		if msgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil {
			for _, cm := range msgs {
				if rights, rerr := unix.ParseUnixRights(&cm); rerr == nil {
					fds = append(fds, rights...)
				}
			}
		}
	}
	if err != nil {
		return ctlMsg{}, fds, err
	}
	if n == 0 {
		return ctlMsg{}, fds, errors.New("the template closed its connection")
	}
	var m ctlMsg
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		return m, fds, fmt.Errorf("protocol: %w", err)
	}
	return m, fds, nil
}

// loop reads the template's reports until its connection ends.
func (t *template) loop() {
	defer func() {
		t.mu.Lock()
		for id, ch := range t.forks {
			ch <- forkReply{pidfd: -1, err: errors.New("the python template exited")}
			delete(t.forks, id)
		}
		// Dead before the forks hear of it: a fork's Err asks whether its
		// template is gone as soon as it is orphaned.
		close(t.dead)
		// Its forks live on (without isolation), but nobody will report
		// how they end.
		for pid, a := range t.children {
			a.Orphaned()
			delete(t.children, pid)
		}
		t.mu.Unlock()
	}()
	for {
		m, fds, err := t.readFds()
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return
		}
		t.mu.Lock()
		switch m.Op {
		case "forked", "fork_failed":
			r := forkReply{pid: m.Pid, pidfd: -1}
			if len(fds) > 0 {
				r.pidfd, fds = fds[0], fds[1:]
			}
			switch {
			case m.Op == "fork_failed":
				r.err = errors.New(m.Error)
				t.allowLocked(-1)
			case r.pidfd < 0:
				r.err = errors.New("protocol: the template sent no pidfd with its fork")
			}
			if ch := t.forks[m.ID]; ch != nil {
				if r.err == nil {
					t.pending[m.Pid] = true
				}
				ch <- r
				delete(t.forks, m.ID)
			} else if r.pidfd >= 0 {
				// Nobody waits (the start was given up): the child finds its
				// connection closed and exits.
				unix.Close(r.pidfd)
			}
		case "exit":
			t.allowLocked(-1)
			ws := syscall.WaitStatus(m.Status)
			if a := t.children[m.Pid]; a != nil {
				a.Reaped(ws)
				delete(t.children, m.Pid)
			} else if t.pending[m.Pid] {
				t.early[m.Pid] = ws
			} // else a fork nobody adopted (its start was given up): nothing to tell
		}
		t.mu.Unlock()
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
}

// fork asks the template for a child that uses conn and the foster's
// output pipes, and returns its pid in the template's PID namespace and a
// pidfd of it, which the caller owns.
func (t *template) fork(ctx context.Context, id string, connFd int, f *sandbox.Foster) (int, int, error) {
	ch := make(chan forkReply, 1)
	t.mu.Lock()
	select {
	case <-t.dead:
		t.mu.Unlock()
		return 0, -1, errors.New("the python template exited")
	default:
	}
	t.forks[id] = ch
	t.allowLocked(+1) // before the fork: its page tables are charged at once
	t.mu.Unlock()
	req, _ := json.Marshal(map[string]string{"op": "fork", "id": id})
	rights := unix.UnixRights(connFd, int(f.Stdout.Fd()), int(f.Stderr.Fd()))
	t.wmu.Lock()
	_, _, err := t.ctl.WriteMsgUnix(req, rights, nil)
	t.wmu.Unlock()
	if err != nil {
		t.mu.Lock()
		delete(t.forks, id)
		t.allowLocked(-1)
		t.mu.Unlock()
		return 0, -1, fmt.Errorf("send fork request: %w", err)
	}
	select {
	case r := <-ch:
		return r.pid, r.pidfd, r.err
	case <-ctx.Done():
		t.mu.Lock()
		delete(t.forks, id)
		t.mu.Unlock()
		// A reply that came meanwhile names a child nobody will adopt; one
		// that comes later finds no waiter. Either child finds its
		// connection closed and exits.
		select {
		case r := <-ch:
			if r.err == nil {
				t.forget(r.pid)
				unix.Close(r.pidfd)
			}
		default:
		}
		return 0, -1, ctx.Err()
	}
}

// adopted registers a fork's sandbox so its exit status reaches it.
func (t *template) adopted(pid int, a sandbox.Adopted) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pending, pid)
	if ws, ok := t.early[pid]; ok {
		delete(t.early, pid)
		a.Reaped(ws)
		return
	}
	select {
	case <-t.dead:
		a.Orphaned()
	default:
		t.children[pid] = a
	}
}

// gone reports whether the template's control connection ended.
func (t *template) gone() bool {
	select {
	case <-t.dead:
		return true
	default:
		return false
	}
}

// forget drops a fork that will not be adopted.
func (t *template) forget(pid int) {
	t.mu.Lock()
	delete(t.pending, pid)
	delete(t.early, pid)
	t.mu.Unlock()
}

// Snapshot describes the live template, if there is one.
func (rt *Runtime) Snapshot() (runtime.Snapshot, bool) {
	rt.mu.Lock()
	t, n := rt.tpl, rt.tplSeq
	rt.mu.Unlock()
	if t == nil {
		return runtime.Snapshot{}, false
	}
	select {
	case <-t.dead:
		return runtime.Snapshot{}, false
	default:
	}
	return runtime.Snapshot{ID: t.id, Pid: t.proc.Pid(), InitMS: t.initMs, MemoryMB: t.proc.MemoryMB(), Started: n,
		Interpreter: t.python.String(), Warning: t.warning}, true
}

// stop ends the template: closing the control connection makes it exit.
// Without isolation forked instances live on (they are in their own
// sandboxes); with it they are in the template's PID namespace, whose end
// ends them too (Instance.Err says so: runtime.ParentGone).
func (t *template) stop(ctx context.Context) error {
	if t.ctl != nil {
		t.ctl.Close()
	}
	return t.proc.Stop(ctx, stopGrace)
}
