// Package pool schedules the requests of one function version onto its
// instances: it starts instances on demand (cold starts), hands each waiting
// request to whichever instance frees first, keeps keep_warm instances,
// applies the function's keep-alive policy (how long idle instances live,
// when to pre-warm one, keepalive.go) and the node's memory budget
// (budget.go), and never stops an instance with a request in flight.
package pool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stokehq/stoke/internal/keepalive"
	"github.com/stokehq/stoke/internal/runtime"
)

// Errors Acquire returns besides the context's and a start failure's.
var (
	// ErrThrottled: max_instances are busy and the queue is full.
	ErrThrottled = errors.New("pool: all instances busy and the queue is full")
	// ErrDraining: the pool is being replaced; the caller should use the new one.
	ErrDraining = errors.New("pool: draining")
	// ErrClosed: the pool was closed while the request waited.
	ErrClosed = errors.New("pool: closed")
	// ErrFailing: the function's instances cannot start and the pool is
	// backing off (health.go); wrapped with the last init error, so the
	// request gets it at once without waiting for a start.
	ErrFailing = errors.New("pool: failing")
)

// Options configures a Pool. Zero values get the defaults named per field.
type Options struct {
	Runtime      runtime.Runtime
	MaxInstances int // default 1
	KeepWarm     int // default 0
	Concurrency  int // in-flight requests per instance, default 1
	QueueSize    int // waiters allowed beyond what starting instances will serve
	// Policy decides how long idle instances above KeepWarm live and when
	// to pre-warm one (keepalive); the pool serialises its calls. Default:
	// keepalive.Fixed of IdleTimeout.
	Policy      keepalive.Policy
	IdleTimeout time.Duration // the default Policy's keep-alive; default 10m
	// MinBackoff and MaxBackoff bound the wait before another start after
	// starts keep failing (health.go); default 1 s and 5 min.
	MinBackoff, MaxBackoff time.Duration
	// MinUptime: an instance that exits by itself sooner than this after it
	// was ready, having completed no invocation, failed to start (a crash
	// loop that gets as far as ready). Default 10 s.
	MinUptime time.Duration
	// MemoryMB is an instance's memory size, as the Budget counts it.
	MemoryMB int
	// Budget is the node's memory budget, shared by every pool (nil: none).
	Budget *Budget
	// Clock tells the policy and the idle bookkeeping the time (default
	// time.Now); tests drive the policy through it.
	Clock func() time.Time
	// NewID names instances (and so their cgroups); default 16 random hex
	// digits, unique across pools.
	NewID func() string
	// Events, when set, is told of instance lifecycle events (for the
	// function's log). Called without the pool's lock held.
	Events func(Event)
	// Limiter, when set, must grant every instance start (a cluster-wide
	// max_instances; cluster.go).
	Limiter Limiter
	Logger  *slog.Logger
}

// EventKind is what happened to an instance.
type EventKind string

const (
	EventReady       EventKind = "ready"
	EventStartFailed EventKind = "start-failed"
	EventExited      EventKind = "exited"
	EventStopped     EventKind = "stopped"
)

// Event describes an instance lifecycle event.
type Event struct {
	Kind     EventKind
	Instance string
	Pid      int
	Init     time.Duration // EventReady
	Err      error         // EventStartFailed, EventExited
	Reason   string        // EventStopped: "idle", "drained", "closed", "discarded"
}

// Pool is the scheduler of one function version. Create it with New.
type Pool struct {
	o Options

	mu       sync.Mutex
	all      map[string]*instance
	free     []*instance // ready instances with a spare slot, most recently used last
	waiters  []*waiter   // FIFO
	starting int
	settling int          // released instances whose runtime is not free yet (lease.go)
	serving  int          // requests holding a slot on an instance
	alive    atomic.Int32 // len(all), read by the budget under its own lock
	ka       keepAlive    // the policy's state in the pool (keepalive.go)
	// later is what to do once the lock is released (unlock): stop
	// instances, and evict other pools' instances the budget chose.
	later    []deferred
	draining bool
	closed   bool
	drained  chan struct{} // closed when draining and nothing is in flight or waiting
	health   health        // consecutive start failures and the backoff (health.go)
	// limited: the Limiter refused a start; nothing more starts until
	// Rescale (cluster.go).
	limited bool

	idleCh  chan struct{} // IdleChanged (cluster.go)
	wasIdle bool

	ctx    context.Context // instance start context; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New makes a pool; call Start to begin keep-warm and idle reaping.
func New(o Options) *Pool {
	if o.MaxInstances < 1 {
		o.MaxInstances = 1
	}
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Minute, o.MinBackoff)
	}
	if o.MinUptime <= 0 {
		o.MinUptime = 10 * time.Second
	}
	if o.Policy == nil {
		o.Policy = &keepalive.Fixed{D: o.IdleTimeout}
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{o: o, all: map[string]*instance{}, ctx: ctx, cancel: cancel, drained: make(chan struct{}), idleCh: make(chan struct{}, 1)}
	p.ka.init(o.Policy, o.Clock())
	return p
}

// Start starts the keep_warm instances and the keep-alive loop.
func (p *Pool) Start() {
	p.mu.Lock()
	p.scaleLocked()
	p.unlock()
	p.wg.Add(1)
	go p.keepAliveLoop()
}

type waiter struct {
	ch chan grant // buffered: granting never blocks under the lock
}

type grant struct {
	in   *instance
	cold bool
	err  error
}

// Acquire returns a lease on a ready instance: an idle one if any, otherwise
// whichever frees or starts first. It starts an instance when fewer than
// max_instances exist and the waiting requests are not already covered by
// instances being started.
func (p *Pool) Acquire(ctx context.Context) (*Lease, error) {
	begin := time.Now()
	p.mu.Lock()
	switch {
	case p.closed:
		p.mu.Unlock()
		return nil, ErrClosed
	case p.draining:
		p.mu.Unlock()
		return nil, ErrDraining
	}
	p.arrivedLocked()
	for n := len(p.free); n > 0 && len(p.waiters) == 0; n = len(p.free) {
		in := p.free[n-1]
		if !p.claimLocked(in) {
			continue // evicted by the memory budget meanwhile; it is gone
		}
		p.takeSlotLocked(in)
		p.unlock()
		return &Lease{Instance: in.rt, InstanceID: in.id, p: p, in: in}, nil
	}
	if err := p.hopelessLocked(begin); err != nil {
		// Failing and backing off, with no instance that could serve:
		// the init error now, not a timeout later.
		p.unlock()
		return nil, err
	}
	w := &waiter{ch: make(chan grant, 1)}
	p.waiters = append(p.waiters, w)
	p.scaleLocked()
	// Instances starting, and those about to be free (a bootstrap between
	// its answer and its next /next), will serve waiters: not a throttle.
	if len(p.waiters) > (p.starting+p.settling)*p.o.Concurrency+p.o.QueueSize {
		p.removeWaiterLocked(w)
		p.unlock()
		return nil, ErrThrottled
	}
	p.unlock()

	select {
	case g := <-w.ch:
		return p.lease(g, begin)
	case <-ctx.Done():
		p.mu.Lock()
		removed := p.removeWaiterLocked(w)
		p.mu.Unlock()
		if !removed {
			// Granted in the meantime: hand the instance back.
			if g := <-w.ch; g.in != nil {
				p.release(g.in, false)
			}
		}
		return nil, ctx.Err()
	}
}

func (p *Pool) lease(g grant, begin time.Time) (*Lease, error) {
	if g.err != nil {
		return nil, g.err
	}
	return &Lease{Instance: g.in.rt, InstanceID: g.in.id, Cold: g.cold, QueueWait: time.Since(begin), p: p, in: g.in}, nil
}

// takeSlotLocked marks one more request in flight on a ready instance.
func (p *Pool) takeSlotLocked(in *instance) {
	if in.inflight == 0 {
		p.ka.leftIdle(in, p.o.Clock(), p.o.MemoryMB)
	}
	in.inflight++
	in.served++
	p.serving++
	p.settleLocked(in)
	if in.inflight >= p.o.Concurrency && in.inFree {
		p.removeFreeLocked(in)
	}
	p.noteIdleLocked()
}

// settleLocked sets a ready instance's state from what it is doing:
// draining while the pool drains, else busy with a request in flight, else
// idle.
func (p *Pool) settleLocked(in *instance) {
	switch {
	case p.draining:
		p.transitionLocked(in, StateDraining)
	case in.inflight > 0:
		p.transitionLocked(in, StateBusy)
	default:
		p.transitionLocked(in, StateIdle)
	}
}

// offerLocked hands a ready instance's spare slots to waiting requests, in
// arrival order, and parks what is left in the free list.
func (p *Pool) offerLocked(in *instance, cold bool) {
	for in.inflight < p.o.Concurrency && len(p.waiters) > 0 {
		w := p.waiters[0]
		p.waiters[0] = nil
		p.waiters = p.waiters[1:]
		p.takeSlotLocked(in)
		w.ch <- grant{in: in, cold: cold}
		cold = false // only one request waited on this init
	}
	p.settleLocked(in)
	if in.inflight < p.o.Concurrency && !in.inFree {
		in.inFree = true
		p.free = append(p.free, in)
	}
	if in.inflight == 0 && !p.draining {
		p.o.Budget.idle(in, p.ka.plan.Value)
	}
	p.noteIdleLocked()
}

func (p *Pool) removeFreeLocked(in *instance) {
	for i, f := range p.free {
		if f == in {
			p.free = append(p.free[:i], p.free[i+1:]...)
			break
		}
	}
	in.inFree = false
	p.noteIdleLocked()
}

func (p *Pool) removeWaiterLocked(w *waiter) bool {
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.checkDrainedLocked()
			return true
		}
	}
	return false
}

// scaleLocked starts instances for waiting requests not covered by those
// already starting, and up to the floor: keep_warm, or what the policy
// holds now (a pre-warm), whichever is more.
func (p *Pool) scaleLocked() {
	if p.closed {
		return
	}
	if p.limited {
		return // until Rescale: the Limiter had no room
	}
	limit := p.o.MaxInstances
	if p.health.failures > 0 {
		p.upLongEnoughLocked(time.Now())
	}
	if p.health.failing() {
		// Starts keep failing: none until the backoff has passed, then one
		// at a time, which requests wait on.
		if time.Now().Before(p.health.retryAt) {
			return
		}
		limit = min(limit, len(p.all)-p.starting+1)
	}
	need := len(p.waiters) - (p.starting+p.settling)*p.o.Concurrency
	for need > 0 && len(p.all) < limit {
		p.spawnLocked(false)
		need -= p.o.Concurrency
	}
	if p.draining {
		return
	}
	floor := min(p.ka.plan.Floor(p.o.KeepWarm), limit)
	for len(p.all) < floor {
		if !p.spawnLocked(len(p.all) >= p.o.KeepWarm) {
			break // the budget has no room for a pre-warm
		}
	}
}

// spawnLocked starts an instance: for a request or keep_warm, or as a
// pre-warm, which starts only if the memory budget has room for it.
func (p *Pool) spawnLocked(prewarm bool) bool {
	in := &instance{owner: p, state: StateStarting, created: time.Now(), prewarm: prewarm}
	victims, ok := p.o.Budget.reserve(in, p.o.MemoryMB, prewarm, p.ka.plan.Value)
	if !ok {
		return false
	}
	for _, v := range victims {
		p.later = append(p.later, deferred{in: v, evict: true})
	}
	if prewarm {
		p.ka.prewarms++
	}
	var id string
	if p.o.NewID != nil {
		id = p.o.NewID()
	} else {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	in.id = id
	p.all[id] = in
	p.alive.Store(int32(len(p.all)))
	p.starting++
	p.wg.Add(1)
	go p.boot(in)
	return true
}

func (p *Pool) boot(in *instance) {
	defer p.wg.Done()
	if p.o.Limiter != nil && !p.take(in) {
		return
	}
	rt, err := p.o.Runtime.Start(p.ctx, in.id)
	p.mu.Lock()
	p.starting--
	if err != nil {
		p.removeLocked(in, StateFailed)
		if !p.closed {
			p.startFailedLocked(err)
		}
		p.checkDrainedLocked()
		p.unlock()
		p.emit(Event{Kind: EventStartFailed, Instance: in.id, Err: err})
		return
	}
	if p.closed {
		p.removeLocked(in, StateStopped)
		p.mu.Unlock()
		p.stop(rt, in.id, "closed")
		return
	}
	in.rt = rt
	in.ready = time.Now()
	in.lastUsed = p.o.Clock()
	p.ka.started(in.lastUsed, rt.InitDuration())
	p.offerLocked(in, true)
	p.wg.Add(1)
	go p.watch(in)
	if p.draining && in.inflight == 0 {
		p.removeLocked(in, StateStopped)
		p.checkDrainedLocked()
		p.mu.Unlock()
		p.emit(Event{Kind: EventReady, Instance: in.id, Pid: rt.Pid(), Init: rt.InitDuration()})
		p.stop(rt, in.id, "drained")
		return
	}
	p.planLocked()
	p.unlock()
	p.emit(Event{Kind: EventReady, Instance: in.id, Pid: rt.Pid(), Init: rt.InitDuration()})
}

// watch removes an instance whose process exited and replaces it if it was
// one of the keep_warm ones.
func (p *Pool) watch(in *instance) {
	defer p.wg.Done()
	<-in.rt.Done()
	p.mu.Lock()
	gone := in.state.Final() // already removed: we stopped it
	if !gone {
		p.removeLocked(in, StateStopped)
		up := time.Since(in.ready)
		young := in.inflight == 0 && in.completed == 0 && up < p.o.MinUptime && !p.closed
		if err := in.rt.Err(); young && !p.health.counted(err) {
			// Ready, then gone without serving: as good as a failed start.
			p.startFailedLocked(fmt.Errorf("instance exited %s after it was ready, before serving: %w",
				up.Round(time.Millisecond), err))
			p.health.parent = parentOf(err)
		} else {
			p.scaleLocked()
		}
		p.checkDrainedLocked()
	}
	p.unlock()
	if !gone {
		p.emit(Event{Kind: EventExited, Instance: in.id, Pid: in.rt.Pid(), Err: in.rt.Err()})
		_ = in.rt.Stop(context.Background()) // frees what the runtime holds
	}
}

// removeLocked takes in out of the pool, into a final state (stopped, or
// failed when it never became ready).
func (p *Pool) removeLocked(in *instance, final State) {
	if in.inFree {
		p.removeFreeLocked(in)
	}
	if in.rt != nil && in.inflight == 0 {
		p.ka.leftIdle(in, p.o.Clock(), p.o.MemoryMB)
	}
	if in.prewarm && in.served == 0 {
		p.ka.prewarmsUnused++
	}
	if in.slot {
		in.slot = false
		p.o.Limiter.Give()
	}
	p.transitionLocked(in, final)
	delete(p.all, in.id)
	p.alive.Store(int32(len(p.all)))
	p.o.Budget.stopped(in)
}

func (p *Pool) stop(rt runtime.Instance, id, reason string) {
	_ = rt.Stop(context.Background())
	p.emit(Event{Kind: EventStopped, Instance: id, Pid: rt.Pid(), Reason: reason})
}

func (p *Pool) emit(e Event) {
	if p.o.Events != nil {
		p.o.Events(e)
	}
}

func (p *Pool) checkDrainedLocked() {
	if !p.draining || len(p.waiters) > 0 || p.starting > 0 {
		return
	}
	for _, in := range p.all {
		if in.inflight > 0 {
			return
		}
	}
	select {
	case <-p.drained:
	default:
		close(p.drained)
	}
}

// Drain stops taking new requests (Acquire returns ErrDraining), lets the
// requests in flight and those already waiting finish, then stops every
// instance. It returns ctx's error if that takes too long; Close then stops
// what is left.
func (p *Pool) Drain(ctx context.Context) error {
	p.mu.Lock()
	p.draining = true
	var idle []*instance
	for _, in := range p.all {
		switch {
		case in.rt == nil: // starting: settles once ready
		case in.inflight == 0 && len(p.waiters) == 0:
			idle = append(idle, in)
		default:
			p.transitionLocked(in, StateDraining)
		}
	}
	for _, in := range idle {
		p.removeLocked(in, StateStopped)
	}
	p.checkDrainedLocked()
	p.mu.Unlock()
	for _, in := range idle {
		p.stop(in.rt, in.id, "drained")
	}
	select {
	case <-p.drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops every instance, in flight or not, fails waiting requests with
// ErrClosed and waits for the pool's goroutines to end.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return
	}
	p.closed = true
	p.draining = true
	p.resetHealthLocked() // its retry timer
	for _, w := range p.waiters {
		w.ch <- grant{err: ErrClosed}
	}
	p.waiters = nil
	var all []*instance
	for _, in := range p.all {
		if in.rt != nil {
			all = append(all, in)
		}
	}
	for _, in := range all {
		p.removeLocked(in, StateStopped)
	}
	p.mu.Unlock()
	p.cancel() // aborts starts in progress
	var wg sync.WaitGroup
	for _, in := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop(in.rt, in.id, "closed")
		}()
	}
	wg.Wait()
	p.wg.Wait()
	if c, ok := p.o.Runtime.(runtime.Closer); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := c.Close(ctx); err != nil {
			p.o.Logger.Warn("close runtime", "err", err)
		}
		cancel()
	}
}
