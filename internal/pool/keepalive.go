package pool

import (
	"sort"
	"time"

	"github.com/stokehq/stoke/internal/keepalive"
)

// The pool's side of the keep-alive policy: it tells the policy every
// arrival, finished request and start, with the time from Options.Clock,
// and applies the plan with keepalive's rule (Plan.Reap, Plan.Floor), as
// `stoke simulate` does. Telling and asking sit on the request path and
// cost a few hundred nanoseconds (BenchmarkWarmPath); reaping and
// pre-warming happen in keepAliveLoop, woken when the plan says.

// keepAlive is the policy's state in a pool; guarded by the pool's lock.
type keepAlive struct {
	pol    keepalive.Policy
	plan   keepalive.Plan // the latest
	wakeAt time.Time      // when keepAliveLoop next applies the plan (zero: in a second)
	kick   chan struct{}  // wakes keepAliveLoop early
	// applies counts the plan's applications (tests: an idle loop sleeps).
	applies int64

	prewarms, prewarmsUnused, evictions int64
	idleMBs                             float64 // memory × seconds instances sat idle
}

func (k *keepAlive) init(pol keepalive.Policy, now time.Time) {
	k.pol = pol
	k.plan = pol.Plan(now)
	k.kick = make(chan struct{}, 1)
}

// started tells the policy an instance became ready after init.
func (k *keepAlive) started(now time.Time, init time.Duration) { k.pol.Started(now, init) }

// leftIdle counts the time in sat idle, as it leaves idle (a request took
// it, or it stops).
func (k *keepAlive) leftIdle(in *instance, now time.Time, memoryMB int) {
	if d := now.Sub(in.lastUsed); d > 0 {
		k.idleMBs += float64(memoryMB) * d.Seconds()
	}
	in.lastUsed = now
}

// units is how many instances n requests in flight occupy: what the policy
// counts (its model is one request per instance).
func (p *Pool) units(n int) int { return (n + p.o.Concurrency - 1) / p.o.Concurrency }

// arrivedLocked tells the policy of a request arriving now.
func (p *Pool) arrivedLocked() {
	now := p.o.Clock()
	p.ka.pol.Arrived(now, p.units(p.serving))
	p.ka.plan = p.ka.pol.Plan(now)
	p.wakeLocked(now)
}

// planLocked asks the policy for the plan now, starts a pre-warm it holds
// already, and wakes the loop when the plan changes something sooner than
// it was going to look.
func (p *Pool) planLocked() {
	now := p.o.Clock()
	p.ka.plan = p.ka.pol.Plan(now)
	p.scaleLocked()
	p.wakeLocked(now)
}

// wakeLocked sets when the loop next applies the plan: when the plan says
// it changes, or when the oldest idle instance expires, if sooner.
func (p *Pool) wakeLocked(now time.Time) {
	next := p.ka.plan.Until
	if oldest := p.oldestIdleLocked(); oldest != nil {
		if d, ok := p.ka.plan.Expiry(now.Sub(oldest.lastUsed), len(p.all), p.o.KeepWarm); ok {
			if at := now.Add(d); next.IsZero() || at.Before(next) {
				next = at
			}
		}
	}
	if next.IsZero() || (!p.ka.wakeAt.IsZero() && !next.Before(p.ka.wakeAt)) {
		return
	}
	p.ka.wakeAt = next
	select {
	case p.ka.kick <- struct{}{}:
	default:
	}
}

// oldestIdleLocked is the idle instance idle longest (nil: none). The free
// list is in the order instances became free, so it is usually the first.
func (p *Pool) oldestIdleLocked() *instance {
	var oldest *instance
	for _, in := range p.free {
		if in.inflight == 0 && (oldest == nil || in.lastUsed.Before(oldest.lastUsed)) {
			oldest = in
		}
	}
	return oldest
}

// keepAliveLoop applies the plan when it is due: it stops idle instances
// past their keep-alive and starts pre-warms. It looks at least once a
// second, so a Clock moved by a test is seen within a second.
func (p *Pool) keepAliveLoop() {
	defer p.wg.Done()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		p.mu.Lock()
		d := time.Second
		if !p.ka.wakeAt.IsZero() {
			d = min(max(p.ka.wakeAt.Sub(p.o.Clock()), time.Millisecond), time.Second)
		}
		p.mu.Unlock()
		t.Reset(d)
		select {
		case <-p.ctx.Done():
			return
		case <-p.ka.kick:
		case <-t.C:
		}
		p.mu.Lock()
		p.applyPlanLocked()
		// The plan's own wake time is read at the top of the loop: a kick
		// this application left for itself would run it again at once, a
		// loop that took most of a CPU with one idle instance.
		select {
		case <-p.ka.kick:
		default:
		}
		p.unlock()
	}
}

// applyPlanLocked stops the idle instances the plan lets go, oldest idle
// first, starts what the floor (keep_warm, pre-warm) asks for, and sets the
// next wake.
func (p *Pool) applyPlanLocked() {
	if p.closed || p.draining {
		return
	}
	now := p.o.Clock()
	p.ka.applies++
	p.ka.plan = p.ka.pol.Plan(now)
	var idle []*instance
	for _, in := range p.free {
		if in.inflight == 0 {
			idle = append(idle, in)
		}
	}
	sort.Slice(idle, func(i, j int) bool { return idle[i].lastUsed.Before(idle[j].lastUsed) })
	n := p.ka.plan.Reap(len(idle), func(i int) time.Duration { return now.Sub(idle[i].lastUsed) }, len(p.all), p.o.KeepWarm)
	for _, in := range idle[:n] {
		p.removeLocked(in, StateStopped)
		p.later = append(p.later, deferred{in: in, reason: "idle"})
	}
	p.scaleLocked()
	p.ka.wakeAt = time.Time{}
	p.wakeLocked(now)
}

// deferred is work for after the lock: stop one of this pool's instances
// (reason), or evict another pool's the budget chose (evict).
type deferred struct {
	in     *instance
	reason string
	evict  bool
}

// unlock releases the lock, then stops what the locked work left to stop:
// stopping waits for a process, and evicting another pool's instance takes
// that pool's lock, which must not be taken with this one held (budget.go).
func (p *Pool) unlock() {
	later := p.later
	p.later = nil
	p.mu.Unlock()
	for _, d := range later {
		if d.evict {
			d.in.owner.evictIdle(d.in)
		} else {
			p.stop(d.in.rt, d.in.id, d.reason)
		}
	}
}

// claimLocked takes an idle instance for a request; false means the memory
// budget evicted it meanwhile: it leaves the pool (its evictor's call to
// evictIdle will find it gone) and is stopped once the lock is released.
func (p *Pool) claimLocked(in *instance) bool {
	if in.inflight > 0 || p.o.Budget.claim(in) {
		return true
	}
	p.evictedLocked(in)
	return false
}

func (p *Pool) evictedLocked(in *instance) {
	p.removeLocked(in, StateStopped)
	p.ka.evictions++
	p.later = append(p.later, deferred{in: in, reason: "evicted"})
}

// evictIdle stops in, which the memory budget chose to make room, unless it
// is gone already.
func (p *Pool) evictIdle(in *instance) {
	p.mu.Lock()
	if !in.state.Final() && in.inflight == 0 {
		p.evictedLocked(in)
		p.scaleLocked() // keep_warm may want it back
	}
	p.unlock()
}

// keptWarm says whether the pool is at or below keep_warm, so that its idle
// instances are not the budget's to evict. Called under the budget's lock,
// not the pool's: it reads an atomic.
func (p *Pool) keptWarm() bool { return int(p.alive.Load()) <= p.o.KeepWarm }

// KeepAliveInfo is what the keep-alive policy decided for the function, for
// `stoke ls`, the dashboard and `stoke cost`.
type KeepAliveInfo struct {
	Policy string `json:"policy"` // as configured: fixed:10m, hybrid, adaptive
	// KeepAlive is how long the last idle instance lives after its last
	// request, as planned now; ScaleOutKeepAlive the same for the others.
	KeepAlive         time.Duration `json:"keep_alive_ns"`
	ScaleOutKeepAlive time.Duration `json:"scale_out_keep_alive_ns"`
	// Warm is how many instances the policy holds now (a pre-warm window),
	// NextPrewarm when it next starts one (zero: none planned).
	Warm        int       `json:"warm"`
	NextPrewarm time.Time `json:"next_prewarm,omitzero"`
	// Prewarms started, and of them stopped (or still idle) without serving.
	Prewarms       int64 `json:"prewarms"`
	PrewarmsUnused int64 `json:"prewarms_unused"`
	// Evictions: idle instances stopped for the node's memory budget.
	Evictions int64 `json:"evictions"`
	// IdleGBSeconds is the memory × time instances sat idle and warm.
	IdleGBSeconds float64 `json:"idle_gb_seconds"`
}

// KeepAlive reports the policy's latest decision and what it did so far.
func (p *Pool) KeepAlive() KeepAliveInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.o.Clock()
	idle := p.ka.idleMBs
	unused := p.ka.prewarmsUnused
	for _, in := range p.all {
		if in.rt != nil && in.inflight == 0 {
			idle += float64(p.o.MemoryMB) * max(now.Sub(in.lastUsed), 0).Seconds()
			if in.prewarm && in.served == 0 {
				unused++
			}
		}
	}
	pl := p.ka.plan
	return KeepAliveInfo{
		Policy: p.ka.pol.Spec(), KeepAlive: pl.KeepAlive, ScaleOutKeepAlive: pl.ExtraKeepAlive,
		Warm: pl.Warm, NextPrewarm: pl.NextPrewarm, Prewarms: p.ka.prewarms, PrewarmsUnused: unused,
		Evictions: p.ka.evictions, IdleGBSeconds: idle / 1024,
	}
}
