package cluster

import (
	"context"
	"errors"

	"github.com/stokehq/stoke/internal/pool"
)

// Router sits between the gateway and a function version's local pool:
// a local idle instance first; else an idle instance claimed on another
// node; else the local pool, which cold-starts within the cluster-wide
// max_instances (Limits), queues, or throttles. It is the gateway's Pool.
type Router struct {
	n           *Node
	fn, version string
	local       LocalPool
}

// NewRouter routes fn's version between local and the cluster.
func (n *Node) NewRouter(fn, version string, local LocalPool) *Router {
	return &Router{n: n, fn: fn, version: version, local: local}
}

// Acquire leases the first free instance in the cluster, preferring this
// node's.
func (r *Router) Acquire(ctx context.Context) (*pool.Lease, error) {
	if l, ok := r.local.TryAcquire(); ok {
		return l, nil
	}
	l, err := r.n.Claim(ctx, r.fn, r.version)
	if err == nil {
		return l, nil
	}
	if !errors.Is(err, ErrNoneIdle) && ctx.Err() == nil {
		r.n.log.Warn("cluster: claim failed; using the local pool", "function", r.fn, "err", err)
	}
	return r.local.Acquire(ctx)
}

// Idle says whether this node has an idle instance (the response cache's
// stale_if_cold asks; a claim elsewhere costs a round trip it would not
// know the outcome of).
func (r *Router) Idle() bool { return r.local.Idle() }
