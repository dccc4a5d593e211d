// Package httprt is the http runtime: any command that serves HTTP on $PORT
// runs as a function, the way AWS Lambda Web Adapter runs it. Start launches
// the command in a sandbox and probes it until it answers; Invoke reverse
// proxies one request to it over a kept-alive loopback connection.
package httprt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/sandbox"
)

// Options configures a Runtime.
type Options struct {
	Function *config.Function
	Version  string // default "$LATEST"
	Region   string // default "us-east-1"
	Sandbox  sandbox.Starter
	// Isolation is the function's user and view (nil: none).
	Isolation *sandbox.Isolation
	// Output receives the app's log lines; may be nil.
	Output func(instanceID, stream, line string)
	Logger *slog.Logger
}

// Runtime starts http instances of one function version.
type Runtime struct {
	o Options
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns a Runtime; o.Function and o.Sandbox are required.
func New(o Options) *Runtime {
	if o.Version == "" {
		o.Version = "$LATEST"
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Runtime{o: o}
}

// Probe pacing. Probes start about every 100 µs so a Go app that is ready in
// ~16 ms is seen within about a millisecond, then back off in proportion to
// how long init has taken (bounding the added latency to about 1/16 of it),
// never slower than Lambda Web Adapter's 10 ms. A refused connect costs tens
// of microseconds, so the ~70 probes of a 50 ms init are cheap.
const (
	probeMinDelay = 100 * time.Microsecond
	probeMaxDelay = 10 * time.Millisecond
	// Go timers have ~1 ms resolution once the scheduler idles in epoll, so
	// shorter pauses use nanosleep, which blocks this goroutine's thread only.
	timerMinDelay = time.Millisecond
	stopGrace     = 2 * time.Second
)

// Start starts one instance and returns it once it serves, or an
// *runtime.Error (Runtime.ExitError, Runtime.OutOfMemory, Runtime.InitError,
// Runtime.InvalidEntrypoint), or ctx's error if ctx ended first.
func (rt *Runtime) Start(ctx context.Context, id string) (runtime.Instance, error) {
	f := rt.o.Function
	iso := rt.o.Isolation
	var netns *sandbox.NetNS
	port := ownNetNSPort
	if iso != nil && iso.NoNetwork {
		// network: none: the app's own loopback; Stoke dials in.
		ns, err := sandbox.NewNetNS()
		if err != nil {
			return nil, runtime.Errorf("Runtime.InitError", http.StatusBadGateway, "network namespace: %v", err)
		}
		netns = ns
		c := *iso
		c.NetNS = ns
		iso = &c
	} else {
		var err error
		if port, err = freePort(); err != nil {
			return nil, runtime.Errorf("Runtime.InitError", http.StatusBadGateway, "pick a port: %v", err)
		}
	}
	in := newInstance(rt, id, port)
	in.netns = netns
	// Starting the process is part of init, and bounded like it.
	sctx, cancel := context.WithTimeout(ctx, runtime.InitTimeout(f))
	defer cancel()
	proc, err := rt.o.Sandbox.Start(sctx, sandbox.Spec{
		ID:        id,
		Args:      f.Command,
		Dir:       f.Cwd,
		Env:       Env(f, rt.o.Version, rt.o.Region, id, port, time.Now()),
		MemoryMB:  f.Memory,
		InitBoost: f.InitBoost,
		Output:    in.Line,
		Isolation: iso,
	})
	if err != nil {
		if netns != nil {
			netns.Close()
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("start instance %s: %w", id, ctx.Err())
		}
		typ := "Runtime.InitError"
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			typ = "Runtime.InvalidEntrypoint"
		}
		return nil, runtime.Errorf(typ, http.StatusBadGateway, "start %q: %v", strings.Join(f.Command, " "), err)
	}
	in.Process = proc
	if err := in.waitReady(ctx); err != nil {
		// The instance never served, so there is nothing to drain: kill it now.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if serr := proc.Stop(sctx, 0); serr != nil {
			rt.o.Logger.Warn("stop failed instance", "function", f.Name, "instance", id, "err", serr)
		}
		in.closeConns()
		if netns != nil {
			netns.Close()
		}
		return nil, err
	}
	if err := proc.EndInitBoost(); err != nil {
		rt.o.Logger.Warn("end init boost", "function", f.Name, "instance", id, "err", err)
	}
	rt.o.Logger.Debug("instance ready", "function", f.Name, "instance", id, "pid", proc.Pid(),
		"port", port, "init", in.Init)
	return in, nil
}

// ownNetNSPort is the app's port in a network namespace of its own, where
// nothing else can have taken it: Lambda Web Adapter's default.
const ownNetNSPort = 8080

// freePort asks the kernel for a free loopback port. The app binds it
// moments later; another process taking it in between is unlikely enough
// that it is reported as an init failure rather than retried.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// Env returns the whole environment of an instance: runtime.Env's layers
// with PORT and AWS_LWA_PORT (Lambda Web Adapter's name) as this kind's own.
func Env(f *config.Function, version, region, instanceID string, port int, now time.Time) []string {
	p := strconv.Itoa(port)
	return runtime.Env(f, version, region, instanceID, now, []string{"PORT=" + p, "AWS_LWA_PORT=" + p}, nil)
}

// waitReady probes the app until it serves, exits, init times out or ctx ends.
func (in *Instance) waitReady(ctx context.Context) error {
	f := in.rt.o.Function
	timeout := runtime.InitTimeout(f)
	start := time.Now()
	pctx, cancel := context.WithDeadline(ctx, start.Add(timeout))
	defer cancel()
	var timer *time.Timer
	var last string // why the last probe failed, for the timeout message
	for {
		ok, why := in.probe(pctx)
		select {
		case <-in.Process.Done():
			// Whatever answered, it was not this process.
			return in.initExitError()
		default:
		}
		if ok {
			in.Init = time.Since(in.Process.Started())
			return nil
		}
		last = why
		delay := min(max(time.Since(start)/16, probeMinDelay), probeMaxDelay)
		if delay < timerMinDelay {
			ts := syscall.NsecToTimespec(int64(delay))
			_ = syscall.Nanosleep(&ts, nil) // EINTR only means probing sooner
			if pctx.Err() == nil {
				continue
			}
		} else if timer == nil {
			timer = time.NewTimer(delay)
			defer timer.Stop()
		} else {
			timer.Reset(delay)
		}
		var tc <-chan time.Time
		if timer != nil {
			tc = timer.C
		}
		select {
		case <-in.Process.Done():
			return in.initExitError()
		case <-pctx.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("start instance %s: %w", in.ID, ctx.Err())
			}
			return runtime.Errorf("Runtime.InitError", http.StatusBadGateway,
				"init timed out after %v: the app did not %s on port %d (last probe: %s)",
				timeout, in.readinessGoal(), in.port, last)
		case <-tc:
		}
	}
}

func (in *Instance) readinessGoal() string {
	r := in.rt.o.Function.Readiness
	if r.Protocol == "tcp" {
		return "accept a TCP connection"
	}
	return fmt.Sprintf("answer GET %s with a status in %d-%d", probePath(r), r.StatusMin, r.StatusMax)
}

func probePath(r config.Readiness) string {
	if r.Path == "" {
		return "/"
	}
	return r.Path
}

// probe makes one readiness check over the instance's own connections, so
// the kept-alive connection it leaves serves the first request.
func (in *Instance) probe(ctx context.Context) (bool, string) {
	r := in.rt.o.Function.Readiness
	if r.Protocol == "tcp" {
		c, err := in.dial(ctx, "tcp", in.addr)
		if err != nil {
			return false, err.Error()
		}
		in.put(newConn(c))
		return true, ""
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+in.addr+probePath(r), nil)
	if err != nil {
		return false, err.Error()
	}
	res, cl, err := in.roundTrip(ctx, req, nil)
	if err != nil {
		return false, err.Error()
	}
	// Drain so the connection can be kept for the first request.
	_, err = io.CopyN(io.Discard, res.Body, 64<<10)
	in.finish(cl, err == io.EOF && !res.Close)
	lo, hi := r.StatusMin, r.StatusMax
	if lo == 0 && hi == 0 {
		lo, hi = 100, 499
	}
	if res.StatusCode < lo || res.StatusCode > hi {
		return false, "status " + strconv.Itoa(res.StatusCode)
	}
	return true, ""
}

// initExitError explains an exit before ready, with the app's last words.
func (in *Instance) initExitError() error {
	e := in.ExitError()
	e.Message = "process exited before it was ready: " + e.Message
	if out := in.Last.String(); out != "" {
		e.Message += "; last output: " + out
	}
	return e
}
