package pool

import (
	"context"
	"time"

	"github.com/stokehq/stoke/internal/runtime"
)

// What a cluster needs of a pool (internal/cluster): take an idle
// instance without waiting or starting one, know when the pool has idle
// instances, lease an instance of another node, bound starts by a
// cluster-wide count, and move keep_warm as nodes come and go.

// Limiter bounds instances beyond this pool: Take reserves room for one
// more instance (false: none left, or it could not tell), Give returns
// it once the instance is gone. Take is called without the pool's lock,
// before an instance starts; Give must not block.
type Limiter interface {
	Take(ctx context.Context) bool
	Give()
}

// TryAcquire leases an idle instance at once, or returns false: it never
// waits and never starts one. Requests already waiting go first.
func (p *Pool) TryAcquire() (*Lease, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.free)
	if n == 0 || len(p.waiters) > 0 || p.draining || p.closed {
		return nil, false
	}
	in := p.free[n-1]
	p.takeSlotLocked(in)
	return &Lease{Instance: in.rt, InstanceID: in.id, p: p, in: in}, true
}

// IdleChanged is signalled whenever the pool goes from having no idle
// instance to having one, or back; Idle says which.
func (p *Pool) IdleChanged() <-chan struct{} { return p.idleCh }

// noteIdleLocked signals IdleChanged when idleness flipped.
func (p *Pool) noteIdleLocked() {
	idle := len(p.free) > 0 && !p.draining && !p.closed
	if idle == p.wasIdle {
		return
	}
	p.wasIdle = idle
	select {
	case p.idleCh <- struct{}{}:
	default:
	}
}

// RemoteLease is a lease on an instance another node reserved: done is
// called once, with discard true when the instance should be stopped.
func RemoteLease(inst runtime.Instance, id string, wait time.Duration, done func(discard bool)) *Lease {
	return &Lease{Instance: inst, InstanceID: id, QueueWait: wait, done: done}
}

// SetKeepWarm changes keep_warm (a cluster moves it as nodes come and go):
// more starts instances now, fewer lets the idle reaper stop the extra
// ones after idle_timeout.
func (p *Pool) SetKeepWarm(n int) {
	p.mu.Lock()
	p.o.KeepWarm = n
	p.scaleLocked()
	p.mu.Unlock()
}

// KeepWarm is the pool's current keep_warm.
func (p *Pool) KeepWarm() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.o.KeepWarm
}

// Rescale looks again at what to start: a Limiter that refused may have
// room now.
func (p *Pool) Rescale() {
	p.mu.Lock()
	p.limited = false
	p.scaleLocked()
	p.mu.Unlock()
}

// take asks the Limiter for room for the starting instance in. Refused,
// the instance is dropped before it ever ran (no event: nothing started)
// and the pool stops starting until Rescale; waiting requests stay queued
// for an instance that frees.
func (p *Pool) take(in *instance) bool {
	ok := p.o.Limiter.Take(p.ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if ok && !p.closed {
		in.slot = true
		return true
	}
	p.starting--
	if ok {
		p.o.Limiter.Give()
	} else {
		p.limited = true
	}
	p.removeLocked(in, StateStopped)
	p.checkDrainedLocked()
	return false
}
