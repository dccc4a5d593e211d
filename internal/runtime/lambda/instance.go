package lambdart

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/sandbox"
)

// state is where the bootstrap is in Lambda's runtime lifecycle. Its
// transitions are driven by the Runtime API calls the bootstrap makes, and
// a call that is not allowed in the current state is answered 403, as Lambda
// answers it.
//
//	started ──/next──► ready ──event──► invoking ──/response|/error──► responded ──/next──► ready …
//	   └──/init/error──► initFailed          any state ──exit──► (process Done)
type state int

const (
	stateStarted    state = iota // process running, no /next yet: initializing
	stateReady                   // the bootstrap is (or is about to be) waiting in /next
	stateInvoking                // an event was handed over; its answer is due
	stateResponded               // answered; the bootstrap has not asked for the next event yet
	stateInitFailed              // the bootstrap posted /init/error
)

// name is the Runtime Interface Emulator's name for the state, used in the
// 403 error messages bootstraps may log.
func (s state) name() string {
	switch s {
	case stateStarted:
		return "Started"
	case stateReady:
		return "Ready"
	case stateInvoking:
		return "Running"
	case stateResponded:
		return "RuntimeResponseSentState"
	default:
		return "InitError"
	}
}

// ErrBusy is returned by InvokeEvent when the instance already has an
// invocation in flight: like Lambda, an instance runs one at a time, and
// the caller (the pool) must never ask for two.
var ErrBusy = errors.New("instance already has an invocation in flight (one per instance)")

// Instance is one running bootstrap and the Runtime API server it talks to.
type Instance struct {
	rt   *Runtime
	id   string
	addr string // host:port of the Runtime API
	srv  *http.Server
	proc sandbox.Process
	// netns is the instance's own network namespace (network: none), in
	// which the Runtime API listens.
	netns *sandbox.NetNS
	last  runtime.LastLines

	ready      chan struct{} // closed at the first /next
	initFailed chan struct{} // closed at /init/error
	initErr    error         // valid once initFailed is closed
	// events hands an invocation from InvokeEvent to a waiting /next. It
	// holds at most one: InvokeEvent only sends while it owns call.
	events chan *call
	stop   chan struct{} // closed by closeAPI, releases waiting /next handlers

	mu    sync.Mutex
	state state
	call  *call // the invocation in flight, from InvokeEvent until answered
	// free is closed while the bootstrap may take an event: from its
	// /next after an answer (runtime.Settling). Answering replaces it.
	free         chan struct{}
	firstNext    time.Time // when the first /next arrived: init's end
	initDuration time.Duration

	closeOnce sync.Once
}

var (
	_ runtime.Instance      = (*Instance)(nil)
	_ runtime.EventInstance = (*Instance)(nil)
	_ runtime.Settling      = (*Instance)(nil)
)

// closedChan is the free channel of a bootstrap that is asking for an event.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// call is one invocation on its way through the Runtime API.
type call struct {
	inv      *runtime.Invocation
	deadline string // Lambda-Runtime-Deadline-Ms
	done     chan *runtime.Result
}

func newInstance(rt *Runtime, id string, l net.Listener) *Instance {
	in := &Instance{
		rt:         rt,
		id:         id,
		addr:       l.Addr().String(),
		ready:      make(chan struct{}),
		initFailed: make(chan struct{}),
		events:     make(chan *call, 1),
		stop:       make(chan struct{}),
		free:       closedChan,
	}
	in.srv = &http.Server{
		Handler: in.routes(),
		// No read or write timeout: /next is a long poll that Lambda never
		// ends, and a response may stream for the function's whole timeout.
		// A client that is slow to send its headers, or idles, is not a
		// bootstrap at work.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       10 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slogLogger(rt.o.Logger.With("instance", id)),
	}
	go in.srv.Serve(l)
	return in
}

// output receives the bootstrap's lines from the sandbox.
func (in *Instance) output(stream, line string) {
	in.last.Add(line)
	if out := in.rt.o.Output; out != nil {
		out(in.id, stream, line)
	}
}

// InvokeEvent hands inv to the bootstrap and waits for its answer. A
// function error (/error, or a response over 6 MB) is a Result with
// FunctionError set; the process exiting is a *runtime.Error; ctx ending
// returns ctx's error and leaves the instance unusable unless the
// bootstrap had not yet taken the event.
func (in *Instance) InvokeEvent(ctx context.Context, inv *runtime.Invocation) (*runtime.Result, error) {
	if inv.RequestID == "" {
		return nil, errors.New("invoke: empty request id")
	}
	c := &call{inv: inv, done: make(chan *runtime.Result, 1)}
	deadline := inv.Deadline
	if deadline.IsZero() {
		var ok bool
		if deadline, ok = ctx.Deadline(); !ok {
			deadline = time.Now().Add(in.timeout())
		}
	}
	c.deadline = strconv.FormatInt(deadline.UnixMilli(), 10)

	select {
	case <-in.proc.Done():
		return nil, &runtime.NotDelivered{Err: in.exitError("")}
	default:
	}
	in.mu.Lock()
	if in.call != nil {
		in.mu.Unlock()
		return nil, fmt.Errorf("invoke instance %s: %w", in.id, ErrBusy)
	}
	in.call = c
	in.mu.Unlock()
	in.events <- c // never blocks: only the owner of in.call sends

	select {
	case res := <-c.done:
		return res, nil
	case <-in.proc.Done():
		// A bootstrap that reports an error and then exits (aws-lambda-go
		// after a panic) has answered: its answer wins over the exit.
		select {
		case res := <-c.done:
			return res, nil
		default:
		}
		if in.takeBack(c) {
			return nil, &runtime.NotDelivered{Err: in.exitError("")}
		}
		return nil, in.exitError(inv.RequestID)
	case <-ctx.Done():
		// Unless the bootstrap never saw the event, it is working on it:
		// the call stays in flight so the instance refuses further work
		// until it is replaced.
		in.takeBack(c)
		return nil, fmt.Errorf("invoke instance %s: %w", in.id, ctx.Err())
	}
}

// takeBack withdraws c if no /next has taken it (or one put it back after
// failing to write it), and says whether it did: the bootstrap never saw
// the event, so the instance is as clean as before.
func (in *Instance) takeBack(c *call) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	select {
	case <-in.events:
		in.call = nil
		return true
	default:
		return false
	}
}

func (in *Instance) timeout() time.Duration {
	if t := in.rt.o.Function.Timeout; t > 0 {
		return t
	}
	return 3 * time.Second
}

// exitError describes how the process ended, the way Lambda words it; with
// a request id when an invocation was in flight.
func (in *Instance) exitError(requestID string) *runtime.Error {
	return runtime.ExitError(in.proc.Exit(), in.rt.o.Function.Memory, requestID)
}

func (in *Instance) Done() <-chan struct{} { return in.proc.Done() }

// Free is closed once the bootstrap asked for its next event after the
// last answer (runtime.Settling).
func (in *Instance) Free() <-chan struct{} {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.free
}

// Err says why the process exited; nil while it runs.
func (in *Instance) Err() error {
	select {
	case <-in.proc.Done():
		return in.exitError("")
	default:
		return nil
	}
}

func (in *Instance) Pid() int { return in.proc.Pid() }

// InitDuration is from process start to the bootstrap's first /next.
func (in *Instance) InitDuration() time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.initDuration
}

func (in *Instance) MaxMemoryMB() int { return in.proc.MaxMemoryMB() }
func (in *Instance) MemoryMB() int    { return in.proc.MemoryMB() }

// RuntimeAPI is the host:port the bootstrap was given as AWS_LAMBDA_RUNTIME_API.
func (in *Instance) RuntimeAPI() string { return in.addr }

// Stop stops the process (SIGTERM, SIGKILL after 2 s) and closes the
// Runtime API server. Safe to call more than once.
func (in *Instance) Stop(ctx context.Context) error {
	var err error
	if in.proc != nil {
		err = in.proc.Stop(ctx, stopGrace)
	}
	in.closeAPI()
	if err != nil {
		return fmt.Errorf("stop instance %s: %w", in.id, err)
	}
	return nil
}

// closeAPIOnExit closes the Runtime API once the process is gone: nobody
// else may talk to it, and its goroutines should not outlive the instance.
func (in *Instance) closeAPIOnExit() {
	<-in.proc.Done()
	in.closeAPI()
}

func (in *Instance) closeAPI() {
	in.closeOnce.Do(func() {
		close(in.stop)
		in.srv.Close()
		if in.netns != nil {
			in.netns.Close()
		}
	})
}
