package pool

import (
	"sync"
	"time"

	"github.com/stokehq/stoke/internal/runtime"
)

// Lease is one request's hold on an instance. Exactly one of Release or
// Discard takes effect; calls after the first do nothing, so a caller may
// defer Discard as a safety net.
type Lease struct {
	Instance   runtime.Instance
	InstanceID string
	// Cold is true when this request waited for its instance to start.
	Cold bool
	// QueueWait is how long Acquire waited for an instance.
	QueueWait time.Duration
	p         *Pool
	in        *instance
	done      func(discard bool) // another node's instance (RemoteLease)
	once      sync.Once
}

// Release returns a healthy instance to the pool.
func (l *Lease) Release() { l.once.Do(func() { l.end(false) }) }

// Discard stops the instance (it timed out or broke) and removes it.
func (l *Lease) Discard() { l.once.Do(func() { l.end(true) }) }

func (l *Lease) end(discard bool) {
	if l.done != nil {
		l.done(discard)
		return
	}
	l.p.release(l.in, discard)
}

func (p *Pool) release(in *instance, discard bool) {
	p.mu.Lock()
	in.inflight--
	p.serving--
	in.lastUsed = p.o.Clock()
	p.ka.pol.Finished(in.lastUsed, p.units(p.serving))
	p.ka.plan = p.ka.pol.Plan(in.lastUsed) // before offerLocked: the budget wants its Value
	if !discard {
		in.completed++
		p.succeededLocked(in)
	}
	reason := ""
	switch {
	case in.state.Final(): // exited meanwhile; watch cleaned up
	case discard:
		reason = "discarded"
	default:
		if free := notFree(in.rt); free != nil {
			// Not free until its runtime says so (a Lambda bootstrap's
			// next /next), and never if it exits first.
			in.awaiting++
			p.settling++
			p.wg.Add(1)
			go p.awaitFree(in, free)
			break
		}
		reason = p.freedLocked(in)
	}
	p.afterReleaseLocked(in, reason)
}

// notFree is the channel to wait on before rt may serve again, or nil when
// it may at once.
func notFree(rt runtime.Instance) <-chan struct{} {
	s, ok := rt.(runtime.Settling)
	if !ok {
		return nil
	}
	free := s.Free()
	select {
	case <-free:
		return nil
	default:
		return free
	}
}

// awaitFree offers in again once its runtime is free. If it exits first,
// watch removes it.
func (p *Pool) awaitFree(in *instance, free <-chan struct{}) {
	defer p.wg.Done()
	select {
	case <-free:
	case <-in.rt.Done():
	case <-p.ctx.Done():
	}
	p.mu.Lock()
	in.awaiting--
	p.settling--
	reason := ""
	if !in.state.Final() && !isDone(in.rt) {
		reason = p.freedLocked(in)
	}
	p.afterReleaseLocked(in, reason)
}

// freedLocked hands a released instance's slot on (or parks it), and says
// why it should stop instead ("" for neither).
func (p *Pool) freedLocked(in *instance) string {
	switch {
	case p.closed:
		return "closed"
	case p.draining && len(p.waiters) == 0:
		if in.inflight == 0 && in.awaiting == 0 {
			return "drained"
		}
		return ""
	}
	p.offerLocked(in, false)
	return ""
}

// afterReleaseLocked stops in if reason says so, tells the keep-alive loop,
// and unlocks.
func (p *Pool) afterReleaseLocked(in *instance, reason string) {
	if reason != "" {
		p.removeLocked(in, StateStopped)
	}
	p.checkDrainedLocked()
	p.scaleLocked()
	p.wakeLocked(p.o.Clock())
	p.unlock()
	if reason != "" {
		p.stop(in.rt, in.id, reason)
	}
}

func isDone(rt runtime.Instance) bool {
	select {
	case <-rt.Done():
		return true
	default:
		return false
	}
}
