package wsgirt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
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
	ctl    *net.UnixConn
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
}

type forkReply struct {
	pid int
	err error
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
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: "@" + rt.name + "-" + id, Net: "unixpacket"})
	if err != nil {
		return nil, runtime.Errorf("Runtime.InitError", http.StatusBadGateway, "listen for the template: %v", err)
	}
	defer l.Close()
	t := &template{rt: rt, id: id, forks: map[string]chan forkReply{}, children: map[int]sandbox.Adopted{},
		pending: map[int]bool{}, early: map[int]syscall.WaitStatus{}, dead: make(chan struct{})}
	env := rt.env(id, "template", rt.name+"-"+id)
	t0 := time.Now()
	proc, err := rt.o.Sandbox.Start(ctx, sandbox.Spec{
		ID: id, Args: rt.args(), Dir: f.Cwd, Env: env,
		MemoryMB: f.Memory, InitBoost: true, Output: t.output,
	})
	if err != nil {
		return nil, rt.startError(ctx, id, err)
	}
	t.proc = proc
	fail := func(cause error) (*template, error) {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if t.ctl != nil {
			t.ctl.Close()
		}
		_ = proc.Stop(sctx, 0)
		var re *runtime.Error
		switch {
		case errors.As(cause, &re):
			return nil, re
		case ctx.Err() != nil:
			return nil, fmt.Errorf("start python template %s: %w", id, ctx.Err())
		case errors.Is(cause, context.DeadlineExceeded):
			return nil, runtime.Errorf("Runtime.InitError", http.StatusBadGateway,
				"the app did not import and warm up within the init limit of %s; last output: %s", f.InitTimeout, t.last.String())
		}
		return nil, runtime.Errorf("Runtime.InitError", http.StatusBadGateway, "the python template did not start (%v; %s); last output: %s",
			cause, runtime.ExitError(proc.Exit(), f.Memory, "").Message, t.last.String())
	}
	ictx, cancel := context.WithTimeout(ctx, f.InitTimeout)
	defer cancel()
	stop := context.AfterFunc(ictx, func() { _ = l.SetDeadline(time.Unix(1, 0)) })
	go func() {
		select {
		case <-proc.Done():
			_ = l.SetDeadline(time.Unix(1, 0))
		case <-ictx.Done():
		}
	}()
	c, err := l.AcceptUnix()
	stop()
	if err != nil {
		if ictx.Err() != nil {
			return fail(ictx.Err())
		}
		return fail(errors.New("exited before connecting"))
	}
	t.ctl = c
	stop = context.AfterFunc(ictx, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
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
	buf := make([]byte, 1<<16)
	n, err := t.ctl.Read(buf)
	if err != nil {
		return ctlMsg{}, err
	}
	if n == 0 {
		return ctlMsg{}, errors.New("the template closed its connection")
	}
	var m ctlMsg
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		return m, fmt.Errorf("protocol: %w", err)
	}
	return m, nil
}

// loop reads the template's reports until its connection ends.
func (t *template) loop() {
	defer func() {
		t.mu.Lock()
		for id, ch := range t.forks {
			ch <- forkReply{err: errors.New("the python template exited")}
			delete(t.forks, id)
		}
		close(t.dead)
		t.mu.Unlock()
	}()
	for {
		m, err := t.read()
		if err != nil {
			return
		}
		t.mu.Lock()
		switch m.Op {
		case "forked", "fork_failed":
			if ch := t.forks[m.ID]; ch != nil {
				r := forkReply{pid: m.Pid}
				if m.Op == "fork_failed" {
					r.err = errors.New(m.Error)
				} else {
					t.pending[m.Pid] = true
				}
				ch <- r
				delete(t.forks, m.ID)
			}
		case "exit":
			ws := syscall.WaitStatus(m.Status)
			if a := t.children[m.Pid]; a != nil {
				a.Reaped(ws)
				delete(t.children, m.Pid)
			} else if t.pending[m.Pid] {
				t.early[m.Pid] = ws
			} // else a fork nobody adopted (its start was given up): nothing to tell
		}
		t.mu.Unlock()
	}
}

// fork asks the template for a child that uses conn and the foster's
// output pipes, and returns its pid.
func (t *template) fork(ctx context.Context, id string, connFd int, f *sandbox.Foster) (int, error) {
	ch := make(chan forkReply, 1)
	t.mu.Lock()
	select {
	case <-t.dead:
		t.mu.Unlock()
		return 0, errors.New("the python template exited")
	default:
	}
	t.forks[id] = ch
	t.mu.Unlock()
	req, _ := json.Marshal(map[string]string{"op": "fork", "id": id})
	rights := unix.UnixRights(connFd, int(f.Stdout.Fd()), int(f.Stderr.Fd()))
	t.wmu.Lock()
	_, _, err := t.ctl.WriteMsgUnix(req, rights, nil)
	t.wmu.Unlock()
	if err != nil {
		t.mu.Lock()
		delete(t.forks, id)
		t.mu.Unlock()
		return 0, fmt.Errorf("send fork request: %w", err)
	}
	select {
	case r := <-ch:
		return r.pid, r.err
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
			}
		default:
		}
		return 0, ctx.Err()
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
	t.children[pid] = a
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

// stop ends the template: closing the control connection makes it exit;
// forked instances live on (they are in their own sandboxes).
func (t *template) stop(ctx context.Context) error {
	if t.ctl != nil {
		t.ctl.Close()
	}
	return t.proc.Stop(ctx, stopGrace)
}
