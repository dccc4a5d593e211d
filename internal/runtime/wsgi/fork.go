package wsgirt

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/sandbox"
)

// Spare forks. Moving a fork into its cgroup is a cgroup v1 join, which
// waits for an RCU grace period (~12 ms here, more under load), and the
// fork itself copies the template's page tables (~5 ms for Django): most of
// a cold start's platform time. So the runtime keeps one fork made ahead of
// demand, already adopted into its own cgroup with the function's limits,
// blocked before it runs any app code — the same idea as the sandbox's
// stubs for exec'd runtimes. Once it is in its cgroup it is given the
// go-ahead at once and does its after-fork work (and, with init boost, the
// warm-up request) ahead of demand too: that work is mostly copy-on-write
// faults (~1,500 pages for Django), 7 ms of CPU on a quiet machine and
// several times that on a loaded one, and it was most of what a cold start
// cost over a warm request. A cold start claims the ready spare and only
// tells it its instance id and log stream (frameGo again, read before its
// first request). The spare's cgroup keeps its spare name; the instance id
// is the pool's.
const (
	wantSpares = 1
	// spareDelay: a new spare is forked this long after one was claimed,
	// so it does not share the CPUs with the cold start that claimed it.
	spareDelay = 50 * time.Millisecond
)

// spare is a fork waiting for its go-ahead.
type spare struct {
	id    string
	tpl   *template // forked from
	proc  sandbox.Adopted
	conn  shimConn
	owner atomic.Pointer[Instance] // who its output goes to, once claimed

	// ready is closed when the after-fork work ended: err is then its
	// failure (the app's init error), or nil and the spare is ready since
	// readyAt after working for init (billed as the instance's init).
	ready   chan struct{}
	err     error
	readyAt time.Time
	init    time.Duration
}

func (sp *spare) output(rt *Runtime) func(stream, line string) {
	return func(stream, line string) {
		if in := sp.owner.Load(); in != nil {
			in.Line(stream, line)
		} else if out := rt.o.Output; out != nil {
			out(sp.id, stream, line)
		}
	}
}

// forkAdopted forks a child of t for sandbox id and adopts it into its own
// cgroup. The child waits for the go-ahead (frameGo) on the returned conn.
func (rt *Runtime) forkAdopted(ctx context.Context, t *template, id string, out func(stream, line string)) (sandbox.Adopted, shimConn, error) {
	f := rt.o.Function
	foster, err := rt.o.Sandbox.Prepare(ctx, sandbox.Spec{ID: id, MemoryMB: f.Memory, InitBoost: f.InitBoost, Output: out})
	if err != nil {
		return nil, shimConn{}, rt.startError(ctx, id, err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		foster.Abandon()
		return nil, shimConn{}, rt.startError(ctx, id, err)
	}
	of := os.NewFile(uintptr(fds[0]), "wsgi-instance")
	nc, err := net.FileConn(of)
	of.Close()
	if err != nil {
		unix.Close(fds[1])
		foster.Abandon()
		return nil, shimConn{}, rt.startError(ctx, id, err)
	}
	pid, pidfd, err := t.fork(ctx, id, fds[1], foster)
	unix.Close(fds[1])
	if err != nil {
		nc.Close()
		foster.Abandon()
		if ctx.Err() != nil {
			return nil, shimConn{}, fmt.Errorf("start instance %s: %w", id, ctx.Err())
		}
		return nil, shimConn{}, runtime.Errorf("Runtime.InitError", http.StatusBadGateway, "fork from the python template: %v", err)
	}
	a, err := foster.AdoptPidfd(pidfd)
	if err != nil {
		t.forget(pid)
		nc.Close()
		return nil, shimConn{}, runtime.Errorf("Runtime.InitError", http.StatusBadGateway, "%v", err)
	}
	t.adopted(pid, a)
	return a, shimConn{c: nc}, nil
}

// startForked starts an instance from a spare fork (claim), or forks one:
// the go-ahead, then the after-fork work, until ready. A fork's init
// duration runs from the fork request to ready.
func (rt *Runtime) startForked(ctx context.Context, id string) (runtime.Instance, error) {
	f := rt.o.Function
	t, err := rt.template(ctx)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	in := newInstance(rt, id)
	if sp := rt.takeSpare(); sp != nil {
		sp.owner.Store(in)
		in.Process, in.tpl = sp.proc, sp.tpl
		in.attach(sp.conn)
		rt.refillSpares(spareDelay)
		return rt.claim(ctx, in, sp, t0)
	}
	fctx, cancel := context.WithTimeout(ctx, runtime.InitTimeout(f)) // a wedged template must not hold the pool
	proc, conn, err := rt.forkAdopted(fctx, t, id, in.Line)
	timedOut := fctx.Err() != nil && ctx.Err() == nil
	cancel()
	if err != nil && timedOut {
		return nil, runtime.Errorf("Runtime.InitError", http.StatusBadGateway,
			"the python template did not fork an instance within %s: %v", runtime.InitTimeout(f), err)
	}
	if err != nil {
		return nil, err
	}
	in.Process, in.tpl = proc, t
	in.attach(conn)
	rt.refillSpares(spareDelay)
	ictx, cancel := context.WithTimeout(ctx, f.InitTimeout)
	defer cancel()
	if err := writeJSON(in.bw, frameGo, goAhead{Env: rt.instanceEnv(id)}); err != nil {
		return nil, in.failed(ctx, err)
	}
	if err := in.awaitReady(ictx); err != nil {
		return nil, in.failed(ctx, err)
	}
	in.drop()
	in.Init = time.Since(t0)
	// Boosted since the fork: Boost is a no-op and the boost goes on.
	in.boostFirst()
	return in, nil
}

// claim makes a claimed spare instance id: once its after-fork work is done
// (it usually is), it is told its id and log stream, which it reads before
// its first request, so nothing more is waited for. Its init duration is
// the after-fork work it did ahead of demand (what a fork claimed before
// the spare existed spends while the request waits, and what Lambda bills
// as init) plus the claim's own wait for it.
func (rt *Runtime) claim(ctx context.Context, in *Instance, sp *spare, t0 time.Time) (runtime.Instance, error) {
	f := rt.o.Function
	ictx, cancel := context.WithTimeout(ctx, f.InitTimeout)
	defer cancel()
	select {
	case <-sp.ready:
	case <-ictx.Done():
		if ctx.Err() == nil {
			return nil, in.failed(ctx, context.DeadlineExceeded)
		}
		return nil, in.failed(ctx, ctx.Err())
	}
	if sp.err != nil {
		return nil, in.failed(ctx, sp.err)
	}
	if err := writeJSON(in.bw, frameGo, goAhead{Env: rt.instanceEnv(in.ID)}); err != nil {
		return nil, in.failed(ctx, err)
	}
	in.drop()
	in.Init = sp.init + time.Since(later(t0, sp.readyAt))
	in.boostFirst()
	return in, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// prewarm gives a spare in its cgroup the go-ahead under its own id and
// waits until its after-fork work is done (or the runtime closes), then
// applies its CPU quota. A cold start may claim it meanwhile: it waits
// for sp.ready.
func (rt *Runtime) prewarm(sp *spare) {
	defer close(sp.ready)
	f := rt.o.Function
	c := sp.conn.c
	// The wait ends at init_timeout, or at once when the runtime closes.
	_ = c.SetReadDeadline(time.Now().Add(f.InitTimeout))
	done, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-rt.shutdown:
			_ = c.SetReadDeadline(time.Unix(1, 0))
		case <-done:
		}
	}()
	t0 := time.Now()
	err := writeJSON(bufio.NewWriterSize(c, 512), frameGo, goAhead{Env: rt.instanceEnv(sp.id)})
	if err == nil {
		// The shim sends nothing after its R (or E) until it is sent a
		// request, so a reader of its own leaves nothing unread behind.
		err = readReady(bufio.NewReaderSize(c, 4096))
	}
	close(done)
	<-watched
	_ = c.SetReadDeadline(time.Time{})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = context.DeadlineExceeded
	}
	if sp.err = err; err != nil {
		return
	}
	sp.readyAt = time.Now()
	sp.init = sp.readyAt.Sub(t0)
	if err := sp.proc.EndInitBoost(); err != nil {
		rt.o.Logger.Warn("end init boost", "function", f.Name, "instance", sp.id, "err", err)
	}
}

// goAhead is the payload of frameGo.
type goAhead struct {
	Env map[string]string `json:"env"`
}

// instanceEnv is what differs between a fork's inherited environment (the
// template's) and an instance's own: its id and its log stream name.
func (rt *Runtime) instanceEnv(id string) map[string]string {
	return map[string]string{
		"STOKE_INSTANCE_ID":          id,
		"AWS_LAMBDA_LOG_STREAM_NAME": runtime.LogStreamName(rt.o.Version, id, time.Now()),
	}
}

// takeSpare claims a live spare, or returns nil.
func (rt *Runtime) takeSpare() *spare {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for len(rt.spares) > 0 {
		sp := rt.spares[0]
		rt.spares = rt.spares[1:]
		select {
		case <-sp.proc.Done():
			sp.conn.c.Close() // died waiting (killed, OOM): forget it
		default:
			return sp
		}
	}
	return nil
}

// refillSpares forks spares up to wantSpares after delay, unless the
// runtime closed or has no live template (a cold start makes one).
func (rt *Runtime) refillSpares(delay time.Duration) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed || rt.filling || len(rt.spares) >= wantSpares {
		return
	}
	rt.filling = true
	rt.fills.Add(1)
	go func() {
		defer rt.fills.Done()
		select {
		case <-time.After(delay):
		case <-rt.shutdown:
		}
		for {
			rt.mu.Lock()
			t := rt.tpl
			if rt.closed || t == nil || len(rt.spares) >= wantSpares {
				rt.filling = false
				rt.mu.Unlock()
				return
			}
			select {
			case <-t.dead:
				rt.filling = false
				rt.mu.Unlock()
				return
			default:
			}
			sp := &spare{tpl: t, id: rt.o.Function.Name + "-" + rt.o.Version + "-spare-" + strconv.FormatUint(sandboxSeq.Add(1), 10)}
			rt.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), rt.o.Function.InitTimeout)
			proc, conn, err := rt.forkAdopted(ctx, t, sp.id, sp.output(rt))
			cancel()
			rt.mu.Lock()
			if err != nil || rt.closed {
				rt.filling = false
				rt.mu.Unlock()
				if err != nil {
					rt.o.Logger.Warn("fork a spare instance", "function", rt.o.Function.Name, "err", err)
				} else {
					stopSpare(proc, conn)
				}
				return
			}
			sp.proc, sp.conn, sp.ready = proc, conn, make(chan struct{})
			rt.spares = append(rt.spares, sp) // claimable at once: a claim waits for ready
			rt.mu.Unlock()
			rt.prewarm(sp)
			if sp.err == nil {
				continue
			}
			// A claim that took it fails with its error, as a fork's start
			// would; one nobody took is stopped, and the next cold start
			// forks and reports the error itself.
			rt.mu.Lock()
			i := slices.Index(rt.spares, sp)
			if i >= 0 {
				rt.spares = slices.Delete(rt.spares, i, i+1)
			}
			rt.filling = false
			rt.mu.Unlock()
			if i >= 0 {
				stopSpare(proc, conn)
				select {
				case <-rt.shutdown:
				default:
					rt.o.Logger.Warn("prepare a spare instance", "function", rt.o.Function.Name, "spare", sp.id, "err", sp.err)
				}
			}
			return
		}
	}()
}

// stopSpare ends a spare that was never claimed.
func stopSpare(proc sandbox.Adopted, conn shimConn) {
	conn.c.Close() // it exits at EOF
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = proc.Stop(ctx, time.Second)
}
