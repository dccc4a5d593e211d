// Package wsgirt is the python-wsgi runtime: a WSGI app (Django, Flask) run
// by Stoke's own Python shim (shim.py, embedded). With snapshot on, one
// template process per function version imports the app and serves it a
// warm-up request; each instance is a fork of it, adopted into its own
// cgroup before it serves. With snapshot off, each instance is a plain
// process that imports everything itself.
package wsgirt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/sandbox"
)

// Sandbox starts processes and adopts forked ones; *sandbox.Manager is one.
type Sandbox interface {
	sandbox.Starter
	Prepare(ctx context.Context, spec sandbox.Spec) (*sandbox.Foster, error)
}

// Options configures a Runtime.
type Options struct {
	Function *config.Function
	Version  string // default "$LATEST"
	Region   string
	Sandbox  Sandbox
	// Isolation is the function's user and view (nil: none). Templates and
	// plain instances start with it; forks inherit the template's.
	Isolation *sandbox.Isolation
	// Output receives log lines (the template's under its own id); may be nil.
	Output func(instanceID, stream, line string)
	Logger *slog.Logger
}

// Runtime starts python-wsgi instances of one function version.
type Runtime struct {
	o Options

	tplMu    sync.Mutex // held while a template starts (template.go)
	mu       sync.Mutex
	tpl      *template // nil until Prepare or the first Start; replaced when it dies
	tplSeq   int
	closed   bool
	shutdown chan struct{}

	spares  []*spare // forks waiting for a cold start (fork.go)
	filling bool
	fills   sync.WaitGroup
}

var _ runtime.Runtime = (*Runtime)(nil)

// sandboxSeq numbers templates and spares, whose sandbox ids must be unique
// in the process: `stoke tune` runs a second Runtime of the same function
// version next to the live one.
var sandboxSeq atomic.Uint64

const stopGrace = 2 * time.Second

// New returns a Runtime; o.Function and o.Sandbox are required.
func New(o Options) *Runtime {
	if o.Version == "" {
		o.Version = "$LATEST"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Runtime{o: o, shutdown: make(chan struct{})}
}

// Prepare starts the template when snapshots are on, so a deploy fails (and
// the previous version keeps serving) if the app cannot import or warm up.
func (rt *Runtime) Prepare(ctx context.Context) error {
	if !rt.o.Function.Python.Snapshot {
		return nil
	}
	if _, err := rt.template(ctx); err != nil {
		return err
	}
	rt.refillSpares(spareDelay)
	return nil
}

// Close stops the template and the listeners. Instances are the pool's to stop.
func (rt *Runtime) Close(ctx context.Context) error {
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil
	}
	rt.closed = true
	close(rt.shutdown)
	tpl := rt.tpl
	spares := rt.spares
	rt.spares = nil
	rt.mu.Unlock()
	rt.fills.Wait()
	for _, sp := range spares {
		stopSpare(sp.proc, sp.conn)
	}
	if tpl != nil {
		return tpl.stop(ctx)
	}
	return nil
}

// Start starts one instance: a fork of the template, or a plain process.
func (rt *Runtime) Start(ctx context.Context, id string) (runtime.Instance, error) {
	if rt.o.Function.Python.Snapshot {
		return rt.startForked(ctx, id)
	}
	return rt.startPlain(ctx, id)
}

// env is the environment of the shim: Lambda's, the function's, and the
// shim's own settings. Its connection to Stoke is its fd 3.
func (rt *Runtime) env(id, mode string) []string {
	f := rt.o.Function
	r := f.Readiness
	forced := []string{
		"STOKE_WSGI_MODE=" + mode,
		"STOKE_WSGI_FD=3",
		"STOKE_INSTANCE_ID=" + id,
		"STOKE_WSGI_WARMUP=" + r.Path,
		"STOKE_WSGI_WARMUP_HOST=" + r.Host,
		fmt.Sprintf("STOKE_WSGI_WARMUP_STATUS=%d-%d", r.StatusMin, r.StatusMax),
		"PYTHONUNBUFFERED=1",
		"PYTHONDONTWRITEBYTECODE=1",
	}
	if f.InitBoost {
		forced = append(forced, "STOKE_WSGI_REWARM=1")
	}
	if f.Python.Handler != "" {
		forced = append(forced, "STOKE_WSGI_HANDLER="+f.Python.Handler)
	} else {
		forced = append(forced, "STOKE_WSGI_DJANGO_SETTINGS="+f.Python.DjangoSettings)
	}
	return runtime.Env(f, rt.o.Version, rt.o.Region, id, time.Now(), nil, forced)
}

func (rt *Runtime) args() []string {
	return []string{rt.o.Function.Python.Interpreter, "-c", shimSource}
}

// startPlain starts a shim in instance mode, connected through a
// socketpair, and waits for it to import the app.
func (rt *Runtime) startPlain(ctx context.Context, id string) (runtime.Instance, error) {
	f := rt.o.Function
	rt.mu.Lock()
	closed := rt.closed
	rt.mu.Unlock()
	if closed {
		return nil, errShuttingDown
	}
	c, child, err := socketpair(unix.SOCK_STREAM, "instance")
	if err != nil {
		return nil, rt.startError(ctx, id, err)
	}
	in := newInstance(rt, id)
	t0 := time.Now()
	sctx, cancel := context.WithTimeout(ctx, runtime.InitTimeout(f)) // starting is part of init
	defer cancel()
	proc, err := rt.o.Sandbox.Start(sctx, sandbox.Spec{
		ID: id, Args: rt.args(), Dir: f.Cwd, Env: rt.env(id, "instance"), Files: []*os.File{child},
		MemoryMB: f.Memory, InitBoost: f.InitBoost, Output: in.Line, Isolation: rt.o.Isolation,
	})
	child.Close()
	if err != nil {
		c.Close()
		return nil, rt.startError(ctx, id, err)
	}
	in.Process = proc
	ictx, cancel := context.WithTimeout(ctx, f.InitTimeout)
	defer cancel()
	in.attach(shimConn{c: c})
	// The shim says hello first; the process exiting closes the socket.
	stop := context.AfterFunc(ictx, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
	typ, _, err := readFrame(in.br, nil)
	stop()
	switch {
	case err != nil && ictx.Err() != nil:
		return nil, in.failed(ctx, ictx.Err())
	case err != nil:
		return nil, in.failed(ctx, errors.New("exited before connecting"))
	case typ != frameHello:
		return nil, in.failed(ctx, fmt.Errorf("protocol: frame %q before hello", typ))
	}
	if err := in.awaitReady(ictx); err != nil {
		return nil, in.failed(ctx, err)
	}
	in.drop()
	in.Init = time.Since(t0)
	if err := proc.EndInitBoost(); err != nil {
		rt.o.Logger.Warn("end init boost", "function", f.Name, "instance", id, "err", err)
	}
	return in, nil
}

// socketpair makes a connected pair of unix sockets of typ: Stoke's end,
// and the end for a child process (close-on-exec: Spec.Files passes it).
func socketpair(typ int, name string) (*net.UnixConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	own := os.NewFile(uintptr(fds[0]), name)
	c, err := net.FileConn(own)
	own.Close()
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return c.(*net.UnixConn), os.NewFile(uintptr(fds[1]), name+" (child)"), nil
}

func (rt *Runtime) startError(ctx context.Context, id string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("start instance %s: %w", id, ctx.Err())
	}
	return runtime.Errorf("Runtime.InitError", http.StatusBadGateway, "start python: %s: %v", rt.interpreter(), err)
}

// shimConn is a connection to a shim.
type shimConn struct {
	c net.Conn
}

// initError turns the shim's report of a failed import into Lambda's words,
// with the traceback, which the log also has.
func initError(p errorPayload) *runtime.Error {
	msg := p.ErrorMessage
	if p.Python.Executable != "" {
		msg += " (python: " + p.Python.String() + ")"
	}
	if len(p.StackTrace) > 0 {
		msg += "\n" + strings.TrimRight(strings.Join(p.StackTrace, ""), "\n")
	}
	typ := p.ErrorType
	if typ == "" {
		typ = "Runtime.InitError"
	}
	return runtime.Errorf(typ, http.StatusBadGateway, "%s", msg)
}

func msString(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64)
}
