package simulate

import (
	"time"

	"github.com/stokehq/stoke/internal/keepalive"
)

// The engine replays arrivals against a model of Stoke's pool: one request
// per instance; an arrival takes the most recently used idle instance, else
// waits and an instance starts (unless enough are starting already); the
// first instance to become free or ready serves the oldest waiter; a request
// that waited for an instance's start is cold. max_instances and the queue
// limit are not modelled. After every event of a function its policy's plan
// is applied with keepalive's rule (Plan.Reap, Plan.Warm), as in the pool.

// epoch is the wall-clock time a trace's offset 0 maps to for the policies.
var epoch = time.Date(2019, 7, 15, 0, 0, 0, 0, time.UTC)

// FunctionResult is what one policy did to one function.
type FunctionResult struct {
	Invocations    int
	ColdStarts     int
	Prewarms       int
	PrewarmsUnused int
	WastedMBs      float64 // MB × seconds idle and warm
}

// Decision is one plan a policy made, recorded for tests.
type Decision struct {
	At   time.Duration
	Plan keepalive.Plan
}

type eventKind uint8

const (
	evReady  eventKind = iota // an instance finished starting
	evDone                    // a request finished
	evArrive                  // a request arrived (in engine.arr)
	evWake                    // a plan's timer
)

type event struct {
	t    time.Duration
	kind eventKind
	seq  uint64
	fn   *fnState
	in   *inst
}

// eventHeap is a binary min-heap of events by (time, kind, seq), typed so
// that pushing and popping does not box events.
type eventHeap []event

func (h eventHeap) less(i, j int) bool { return before(&h[i], &h[j]) }

// before orders events by time, then kind, then the order they were made.
func before(a, b *event) bool {
	if a.t != b.t {
		return a.t < b.t
	}
	if a.kind != b.kind {
		return a.kind < b.kind
	}
	return a.seq < b.seq
}

func (h *eventHeap) push(e event) {
	*h = append(*h, e)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *eventHeap) pop() event {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = event{}
	s = s[:n]
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && s.less(r, l) {
			c = r
		}
		if !s.less(c, i) {
			break
		}
		s[i], s[c] = s[c], s[i]
		i = c
	}
	*h = s
	return top
}

type inst struct {
	fn        *fnState
	idleSince time.Duration
	idle      bool
	used      bool
	prewarm   bool
	dur       time.Duration // the request it serves
}

type fnState struct {
	f        *Function
	pol      keepalive.Policy
	keepWarm int
	arr      []Arrival
	next     int
	idle     []*inst // oldest idle first
	waiters  []Arrival
	alive    int
	starting int
	busy     int
	wake     uint64        // the pending wake's seq (0: none); other wakes are stale
	wakeAt   time.Duration // and its time
	res      FunctionResult
	record   func(Decision)
}

type engine struct {
	h eventHeap
	// arr holds each function's next arrival, apart: with one function
	// (no budget) it is one event, and the main heap holds only what the
	// simulation itself schedules.
	arr    eventHeap
	seq    uint64
	end    time.Duration
	budget *keepalive.Budget[*inst]
}

func (e *engine) pushArrival(fn *fnState) {
	e.seq++
	e.arr.push(event{t: fn.arr[fn.next].At, kind: evArrive, seq: e.seq, fn: fn})
}

func (e *engine) push(ev event) uint64 {
	e.seq++
	ev.seq = e.seq
	e.h.push(ev)
	return e.seq
}

func at(t time.Duration) time.Time { return epoch.Add(t) }

// run simulates fns together until the trace's end.
func (e *engine) run(fns []*fnState) {
	for _, fn := range fns {
		for i := 0; i < fn.keepWarm; i++ { // kept warm all along
			in := &inst{fn: fn}
			fn.alive++
			if e.budget != nil {
				e.budget.Started(fn.f.MemoryMB)
			}
			e.becomeIdle(in, 0)
		}
		if len(fn.arr) > 0 {
			e.pushArrival(fn)
		}
		e.replan(fn, 0)
	}
	for len(e.h) > 0 || len(e.arr) > 0 {
		// The next arrival goes first unless an event comes before it (at
		// the same time: a start or a finished request before, a wake
		// after, as the event kinds order them).
		if len(e.arr) > 0 && (len(e.h) == 0 || before(&e.arr[0], &e.h[0])) {
			next := e.arr.pop()
			if next.t > e.end {
				break
			}
			e.arrive(next.fn, next.t)
			e.replan(next.fn, next.t)
			continue
		}
		ev := e.h.pop()
		if ev.t > e.end {
			break
		}
		fn := ev.fn
		switch ev.kind {
		case evReady:
			e.ready(ev.in, ev.t)
		case evDone:
			e.done(ev.in, ev.t)
		case evWake:
			if ev.seq != fn.wake {
				continue
			}
			fn.wake, fn.wakeAt = 0, 0
		}
		e.replan(fn, ev.t)
	}
	for _, fn := range fns {
		for _, in := range fn.idle {
			e.stop(in, e.end)
		}
		fn.idle = nil
	}
}

func (e *engine) arrive(fn *fnState, t time.Duration) {
	a := fn.arr[fn.next]
	fn.next++
	if fn.next < len(fn.arr) {
		e.pushArrival(fn)
	}
	fn.pol.Arrived(at(t), fn.busy)
	fn.res.Invocations++
	if n := len(fn.idle); n > 0 {
		in := fn.idle[n-1]
		fn.idle = fn.idle[:n-1]
		e.take(in, a.Duration, t, false)
		return
	}
	fn.waiters = append(fn.waiters, a)
	if fn.starting < len(fn.waiters) {
		e.start(fn, t, false)
	}
}

// take puts in to work on a request of d from t.
func (e *engine) take(in *inst, d, t time.Duration, cold bool) {
	fn := in.fn
	if in.idle {
		fn.res.WastedMBs += float64(fn.f.MemoryMB) * (t - in.idleSince).Seconds()
		in.idle = false
		if e.budget != nil {
			e.budget.Busy(in)
		}
	}
	if cold {
		fn.res.ColdStarts++
	}
	in.used = true
	fn.busy++
	e.push(event{t: t + d, kind: evDone, fn: fn, in: in})
}

func (e *engine) start(fn *fnState, t time.Duration, prewarm bool) bool {
	mb := fn.f.MemoryMB
	if e.budget != nil {
		below := keepalive.Inf
		if prewarm {
			below = e.budget.Clock() + fn.pol.Plan(at(t)).Value
		}
		victims, fits := e.budget.Evict(mb, below, func(in *inst) bool { return in.fn.alive <= in.fn.keepWarm })
		if prewarm && !fits {
			return false
		}
		for _, v := range victims {
			e.evicted(v, t)
		}
		e.budget.Started(mb)
	}
	in := &inst{fn: fn, prewarm: prewarm}
	fn.alive++
	fn.starting++
	if prewarm {
		fn.res.Prewarms++
	}
	e.push(event{t: t + fn.f.Init, kind: evReady, fn: fn, in: in})
	return true
}

func (e *engine) ready(in *inst, t time.Duration) {
	fn := in.fn
	fn.starting--
	fn.pol.Started(at(t), fn.f.Init)
	if len(fn.waiters) > 0 {
		a := fn.waiters[0]
		fn.waiters = fn.waiters[1:]
		e.take(in, a.Duration, t, true)
		return
	}
	e.becomeIdle(in, t)
}

func (e *engine) done(in *inst, t time.Duration) {
	fn := in.fn
	fn.busy--
	fn.pol.Finished(at(t), fn.busy)
	if len(fn.waiters) > 0 {
		a := fn.waiters[0]
		fn.waiters = fn.waiters[1:]
		e.take(in, a.Duration, t, false)
		return
	}
	e.becomeIdle(in, t)
}

func (e *engine) becomeIdle(in *inst, t time.Duration) {
	fn := in.fn
	in.idle = true
	in.idleSince = t
	fn.idle = append(fn.idle, in)
	if e.budget != nil {
		e.budget.Idle(in, fn.f.MemoryMB, fn.pol.Plan(at(t)).Value)
	}
}

// stop ends an idle instance at t.
func (e *engine) stop(in *inst, t time.Duration) {
	fn := in.fn
	fn.res.WastedMBs += float64(fn.f.MemoryMB) * (t - in.idleSince).Seconds()
	if in.prewarm && !in.used {
		fn.res.PrewarmsUnused++
	}
	in.idle = false
	fn.alive--
}

// evicted stops an idle instance the budget chose (its memory is already
// released from the budget).
func (e *engine) evicted(in *inst, t time.Duration) {
	fn := in.fn
	for i, x := range fn.idle {
		if x == in {
			fn.idle = append(fn.idle[:i], fn.idle[i+1:]...)
			break
		}
	}
	e.stop(in, t)
}

// replan applies fn's plan at t: stop expired idle instances, start
// pre-warms, and set the timer for the next change.
func (e *engine) replan(fn *fnState, t time.Duration) {
	now := at(t)
	p := fn.pol.Plan(now)
	if fn.record != nil {
		fn.record(Decision{At: t, Plan: p})
	}
	n := p.Reap(len(fn.idle), func(i int) time.Duration { return t - fn.idle[i].idleSince }, fn.alive, fn.keepWarm)
	for _, in := range fn.idle[:n] {
		e.stop(in, t)
		if e.budget != nil {
			e.budget.Stopped(in, fn.f.MemoryMB)
		}
	}
	fn.idle = fn.idle[n:]
	for fn.alive < p.Floor(fn.keepWarm) {
		if !e.start(fn, t, true) {
			break
		}
	}
	next := time.Duration(-1)
	if !p.Until.IsZero() {
		next = p.Until.Sub(epoch)
	}
	if len(fn.idle) > 0 {
		if in, ok := p.Expiry(t-fn.idle[0].idleSince, fn.alive, fn.keepWarm); ok && (next < 0 || t+in < next) {
			next = t + in
		}
	}
	// One pending wake per function: an earlier one replaces it, a later
	// one waits for it (the wake replans and sets the next).
	if next > t && (fn.wake == 0 || next < fn.wakeAt) {
		fn.wake, fn.wakeAt = e.push(event{t: next, kind: evWake, fn: fn}), next
	}
}
