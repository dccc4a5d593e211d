package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/stokehq/stoke/internal/pool"
)

// Router sits between the gateway and a function version's local pool:
// a local idle instance first; else an idle instance claimed on another
// node; else the local pool, which cold-starts within the cluster-wide
// max_instances (Limit), queues, or throttles — and while the request
// waits there, claims are tried again, so an instance freeing on another
// node serves it if it frees first. It is the gateway's Pool.
type Router struct {
	n           *Node
	fn, version string
	local       LocalPool
}

// Retry delays of the claims of a waiting request: doubling from
// claimRetryMin up to claimRetryMax.
const (
	claimRetryMin = 2 * time.Millisecond
	claimRetryMax = 50 * time.Millisecond
)

// NewRouter routes fn's version between local and the cluster.
func (n *Node) NewRouter(fn, version string, local LocalPool) *Router {
	return &Router{n: n, fn: fn, version: version, local: local}
}

// Acquire leases the first free instance in the cluster, preferring this
// node's.
func (r *Router) Acquire(ctx context.Context) (*pool.Lease, error) {
	begin := time.Now()
	if l, ok := r.local.TryAcquire(); ok {
		return l, nil
	}
	if l, ok := r.claim(ctx, begin); ok {
		return l, nil
	}
	type result struct {
		l   *pool.Lease
		err error
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	local := make(chan result, 1)
	go func() {
		l, err := r.local.Acquire(lctx)
		local <- result{l, err}
	}()
	delay := claimRetryMin
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case x := <-local:
			return x.l, x.err
		case <-timer.C:
		}
		if l, ok := r.claim(ctx, begin); ok {
			cancel()
			if x := <-local; x.l != nil {
				x.l.Release() // granted here at the same moment
			}
			return l, nil
		}
		delay = min(2*delay, claimRetryMax)
		timer.Reset(delay)
	}
}

func (r *Router) claim(ctx context.Context, begin time.Time) (*pool.Lease, bool) {
	l, err := r.n.Claim(ctx, r.fn, r.version)
	if err != nil {
		if !errors.Is(err, ErrNoneIdle) && ctx.Err() == nil {
			r.n.log.Debug("cluster: claim failed", "function", r.fn, "err", err)
		}
		return nil, false
	}
	l.QueueWait = time.Since(begin)
	return l, true
}

// Idle says whether this node has an idle instance (the response cache's
// stale_if_cold asks; a claim elsewhere costs a round trip it would not
// know the outcome of).
func (r *Router) Idle() bool { return r.local.Idle() }
