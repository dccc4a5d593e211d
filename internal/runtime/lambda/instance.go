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

// Instance is one running bootstrap and the Runtime API it talks to.
type Instance struct {
	rt   *Runtime
	id   string
	addr string       // host:port of the Runtime API
	l    net.Listener // the Runtime API's
	mux  http.Handler // routes.go
	proc sandbox.Process
	// netns is the instance's own network namespace (network: none), in
	// which the Runtime API listens.
	netns *sandbox.NetNS
	last  runtime.LastLines

	ready      chan struct{} // closed at the first /next
	initFailed chan struct{} // closed at /init/error
	initErr    error         // valid once initFailed is closed
	stop       chan struct{} // closed by closeAPI, releases parked connections

	connMu sync.Mutex
	conns  map[*apiConn]struct{} // nil once the Runtime API is closed

	mu    sync.Mutex
	state state
	call  *call // the invocation in flight, from InvokeEvent until answered
	// nexts are the GET /next calls waiting for an event, oldest first
	// (one, from a bootstrap that keeps its connection); parkedNext is
	// signalled when one parks.
	nexts      []*parked
	parkedNext chan struct{}
	// reading is the connection the invoker reads the answer from; an
	// answer that comes on another one interrupts that read.
	reading *apiConn
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
		l:          l,
		ready:      make(chan struct{}),
		initFailed: make(chan struct{}),
		stop:       make(chan struct{}),
		conns:      map[*apiConn]struct{}{},
		parkedNext: make(chan struct{}, 1),
		free:       closedChan,
	}
	in.mux = in.routes()
	// No read or write timeout on a request: /next is a long poll that
	// Lambda never ends, and an answer may stream for the function's whole
	// timeout (conn.go bounds heads and idle connections).
	go in.serve(l)
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

	// This goroutine writes the event to the bootstrap's waiting /next and
	// reads its answer off the same connection: no hand-off either way.
	var p *parked
	for {
		var err error
		if p, err = in.takeNext(ctx, c); err != nil {
			return nil, err
		}
		if in.deliver(p, c) {
			break
		}
		// The bootstrap hung up before the event was written: it never had
		// it. Its next /next (on a new connection), or its exit, follows.
		p.giveBack(true)
	}
	return in.await(ctx, c, p)
}

// takeNext waits for a parked GET /next. Until the event is written the
// bootstrap has not seen it: an exit or ctx ending withdraws it, and the
// instance is as clean as before.
func (in *Instance) takeNext(ctx context.Context, c *call) (*parked, error) {
	for {
		in.mu.Lock()
		if len(in.nexts) > 0 {
			p := in.nexts[0]
			in.nexts[0] = nil
			in.nexts = in.nexts[1:]
			in.mu.Unlock()
			if p.c.peerClosed() {
				p.giveBack(true)
				continue
			}
			return p, nil
		}
		in.mu.Unlock()
		select {
		case <-in.parkedNext:
		case <-in.proc.Done():
			in.withdraw(c)
			return nil, &runtime.NotDelivered{Err: in.exitError("")}
		case <-ctx.Done():
			in.withdraw(c)
			return nil, fmt.Errorf("invoke instance %s: %w", in.id, ctx.Err())
		}
	}
}

// withdraw gives up c before it was delivered.
func (in *Instance) withdraw(c *call) {
	in.mu.Lock()
	if in.call == c {
		in.call = nil
	}
	in.mu.Unlock()
}

// deliver answers the parked /next with c's event, from the invoking
// goroutine; false when the connection broke first.
func (in *Instance) deliver(p *parked, c *call) bool {
	in.mu.Lock()
	in.state = stateInvoking
	in.reading = p.c
	in.mu.Unlock()
	inv := c.inv
	h := p.w.Header()
	h[hdrRequestID] = []string{inv.RequestID}
	h[hdrDeadline] = []string{c.deadline}
	arn := inv.FunctionARN
	if arn == "" {
		arn = in.rt.arn
	}
	h[hdrFunctionARN] = []string{arn}
	trace := inv.TraceID
	if trace == "" {
		trace = newTraceID(time.Now())
	}
	h[hdrTraceID] = []string{trace}
	if inv.ClientContext != "" {
		h[hdrClientContext] = []string{decodeClientContext(inv.ClientContext)}
	}
	if inv.CognitoIdentity != "" {
		h[hdrCognitoIdentity] = []string{inv.CognitoIdentity}
	}
	h["Content-Type"] = jsonType
	h["Content-Length"] = []string{strconv.Itoa(len(inv.Payload))}
	p.w.WriteHeader(http.StatusOK)
	p.w.Write(inv.Payload)
	p.c.finish(p.w, p.req)
	if p.c.closing {
		in.mu.Lock()
		in.state = stateReady
		in.reading = nil
		in.mu.Unlock()
		return false
	}
	return true
}

// await reads the bootstrap's calls off p's connection until c is
// answered (on it, or on another connection), the process exits or ctx
// ends; then the connection goes back to its goroutine.
func (in *Instance) await(ctx context.Context, c *call, p *parked) (*runtime.Result, error) {
	nc := p.c.nc
	// ctx's end interrupts the read, but never once the connection is
	// given back: its goroutine's reads are not this call's to cut.
	var cut sync.Mutex
	given := false
	stop := context.AfterFunc(ctx, func() {
		cut.Lock()
		defer cut.Unlock()
		if !given {
			_ = nc.SetReadDeadline(aLongTimeAgo)
		}
	})
	giveBack := func(broken bool) {
		stop()
		cut.Lock()
		given = true
		cut.Unlock()
		in.mu.Lock() // answer no longer interrupts it
		if in.reading == p.c {
			in.reading = nil
		}
		in.mu.Unlock()
		if !broken {
			_ = nc.SetReadDeadline(time.Time{})
		}
		p.giveBack(broken)
	}
	for {
		select {
		case res := <-c.done:
			giveBack(false)
			return res, nil
		default:
		}
		req, err := p.c.read(0)
		if err != nil {
			// Interrupted while waiting for a request, the connection is
			// still in step; within one, it is not.
			giveBack(p.c.br.Buffered() > 0 || !isTimeout(err))
			return in.unanswered(ctx, c)
		}
		if q := p.c.serve(req); q != nil {
			// A /next parked on this connection (after an answer that came
			// on another one): its goroutine waits for that one next.
			p.then = q
		}
		if p.c.closing {
			giveBack(true)
			return in.unanswered(ctx, c)
		}
	}
}

// unanswered is the outcome of an invocation whose connection gave no
// answer: one that came on another connection, the exit, or ctx's end.
func (in *Instance) unanswered(ctx context.Context, c *call) (*runtime.Result, error) {
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
		return nil, in.exitError(c.inv.RequestID)
	case <-ctx.Done():
		// The bootstrap is working on it: the call stays in flight, so the
		// instance refuses further work until it is replaced.
		return nil, fmt.Errorf("invoke instance %s: %w", in.id, ctx.Err())
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
		in.closeConns()
		if in.netns != nil {
			in.netns.Close()
		}
	})
}
