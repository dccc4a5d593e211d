// Package lambdart is the lambda runtime: an unmodified Lambda custom-runtime
// bootstrap (a Go program built with aws-lambda-go's lambda.Start, or any
// other runtime interface client) runs as a function. Each instance gets its
// own Runtime API server on a loopback port, named in AWS_LAMBDA_RUNTIME_API;
// the bootstrap long-polls it for events and posts back its answers, exactly
// as it would inside Lambda.
package lambdart

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/lambdaspec"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/sandbox"
)

// Options configures a Runtime.
type Options struct {
	// Function's Command is the bootstrap; its EventFormat ("1.0" or "2.0")
	// shapes the events HTTP routes produce.
	Function  *config.Function
	Version   string // default "$LATEST"
	Region    string // default "us-east-1"
	AccountID string // in the function ARN; default "000000000000"
	Sandbox   sandbox.Starter
	// Isolation is the function's user and view (nil: none).
	Isolation *sandbox.Isolation
	// Output receives the bootstrap's log lines; may be nil.
	Output func(instanceID, stream, line string)
	Logger *slog.Logger
	// Spares keeps Runtime API listeners made ahead for recent cold
	// starts, shared by the Runtimes of a server (nil: none).
	Spares *Spares
}

// Runtime starts lambda instances of one function version.
type Runtime struct {
	o   Options
	arn string
	// sparesClosed: Close ran, no listener is made ahead for it any more.
	// Guarded by o.Spares' mutex.
	sparesClosed bool
}

var (
	_ runtime.Runtime = (*Runtime)(nil)
	_ runtime.Closer  = (*Runtime)(nil)
)

// New returns a Runtime; o.Function and o.Sandbox are required.
func New(o Options) *Runtime {
	if o.Version == "" {
		o.Version = "$LATEST"
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.AccountID == "" {
		o.AccountID = "000000000000"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Runtime{o: o, arn: lambdaspec.FunctionARN(o.Region, o.AccountID, o.Function.Name)}
}

const (
	stopGrace   = 2 * time.Second
	apiBasePath = "/2018-06-01"
)

// Start starts one instance and returns it once the bootstrap first asks
// for an event, or an *runtime.Error (Runtime.ExitError,
// Runtime.OutOfMemory, Runtime.InitError, Runtime.InvalidEntrypoint, or the
// type the bootstrap posted to /runtime/init/error), or ctx's error.
func (rt *Runtime) Start(ctx context.Context, id string) (runtime.Instance, error) {
	f := rt.o.Function
	// Listening before the process starts means the bootstrap can never
	// race the server: its first /next connects or queues in the backlog.
	iso := rt.o.Isolation
	var netns *sandbox.NetNS
	var l net.Listener
	var err error
	switch {
	case iso != nil && iso.NoNetwork:
		// network: none: the Runtime API listens on the instance's own
		// loopback, which nothing else reaches.
		if netns, err = sandbox.NewNetNS(); err == nil {
			if l, err = netns.Listen("tcp", "127.0.0.1:9001"); err != nil {
				netns.Close()
			}
		}
		c := *iso
		c.NetNS = netns
		iso = &c
	default:
		l, err = rt.apiListener(id)
	}
	if err != nil {
		return nil, runtime.Errorf("Runtime.InitError", http.StatusBadGateway, "listen for the Runtime API: %v", err)
	}
	in := newInstance(rt, id, l)
	in.netns = netns
	// Starting the process is part of init, and bounded like it.
	sctx, cancel := context.WithTimeout(ctx, runtime.InitTimeout(f))
	defer cancel()
	proc, err := rt.o.Sandbox.Start(sctx, sandbox.Spec{
		ID:        id,
		Args:      f.Command,
		Dir:       f.Cwd,
		Env:       Env(f, rt.o.Version, rt.o.Region, id, in.addr, time.Now()),
		MemoryMB:  f.Memory,
		InitBoost: f.InitBoost,
		Output:    in.output,
		Isolation: iso,
	})
	if err != nil {
		in.closeAPI()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("start instance %s: %w", id, ctx.Err())
		}
		typ := "Runtime.InitError"
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			typ = "Runtime.InvalidEntrypoint"
		}
		return nil, runtime.Errorf(typ, http.StatusBadGateway, "start %q: %v", strings.Join(f.Command, " "), err)
	}
	in.proc = proc
	go in.closeAPIOnExit()
	if netns == nil {
		// While the bootstrap initializes: the next cold start's listener.
		rt.o.Spares.refill(rt)
	}
	if err := in.waitInit(ctx); err != nil {
		// The instance never served, so there is nothing to drain: kill it now.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if serr := in.Stop(sctx); serr != nil {
			rt.o.Logger.Warn("stop failed instance", "function", f.Name, "instance", id, "err", serr)
		}
		return nil, err
	}
	if err := proc.EndInitBoost(); err != nil {
		rt.o.Logger.Warn("end init boost", "function", f.Name, "instance", id, "err", err)
	}
	rt.o.Logger.Debug("instance ready", "function", f.Name, "instance", id, "pid", proc.Pid(),
		"runtime_api", in.addr, "init", in.initDuration)
	return in, nil
}

// Close closes the Runtime API listener kept ahead for the function
// version, if any (runtime.Closer: the pool calls it once its instances
// are stopped).
func (rt *Runtime) Close(context.Context) error {
	rt.o.Spares.drop(rt)
	return nil
}

// waitInit waits for the bootstrap's first GET /next (ready), its
// /init/error, its exit, the init timeout or ctx.
func (in *Instance) waitInit(ctx context.Context) error {
	timeout := runtime.InitTimeout(in.rt.o.Function)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-in.ready:
		// Measured here rather than in the handler, which may run before
		// Sandbox.Start has returned the process.
		in.mu.Lock()
		in.initDuration = in.firstNext.Sub(in.proc.Started())
		in.mu.Unlock()
		return nil
	case <-in.initFailed:
		return in.initErr
	case <-in.proc.Done():
		// A bootstrap may post /init/error and exit at once: its own words
		// explain more than the exit status does.
		select {
		case <-in.initFailed:
			return in.initErr
		case <-in.ready:
			// Ready and then gone before Start returned: report the exit.
		default:
		}
		return in.initExitError()
	case <-t.C:
		return runtime.Errorf("Runtime.InitError", http.StatusBadGateway,
			"init timed out after %v: the bootstrap did not ask for an event (GET %s/runtime/invocation/next)",
			timeout, apiBasePath)
	case <-ctx.Done():
		return fmt.Errorf("start instance %s: %w", in.id, ctx.Err())
	}
}

// initExitError explains an exit before ready, with the bootstrap's last words.
func (in *Instance) initExitError() error {
	e := in.exitError("")
	e.Message = "process exited before it was ready: " + e.Message
	if out := in.last.String(); out != "" {
		e.Message += "; last output: " + out
	}
	return e
}

// Env returns the whole environment of an instance: runtime.Env's layers
// with _HANDLER as this kind's own and the Runtime API address forced: a
// function cannot point its bootstrap elsewhere.
func Env(f *config.Function, version, region, instanceID, runtimeAPI string, now time.Time) []string {
	handler := ""
	if len(f.Command) > 0 {
		handler = filepath.Base(f.Command[0])
	}
	return runtime.Env(f, version, region, instanceID, now, []string{"_HANDLER=" + handler},
		[]string{"AWS_LAMBDA_RUNTIME_API=" + runtimeAPI})
}
