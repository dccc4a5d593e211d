package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/pool"
)

// Claiming an idle instance on another node. Every node with an idle
// instance of a function version holds a queue subscription on the
// version's claim subject; a gateway with no idle instance of its own
// asks that subject. NATS hands the request to one subscriber; it
// reserves an idle instance and answers with its peer address and a
// one-time token, and the request itself then goes to that node over
// HTTP (peer.go). No subscriber means no idle instance anywhere (NATS
// answers "no responders" at once); a node that went busy meanwhile
// answers busy.

// reserveFor is how long a reserved instance waits for its request
// before it goes back to its pool.
const reserveFor = 2 * time.Second

// LocalPool is what the cluster needs of a function version's pool.
type LocalPool interface {
	Acquire(ctx context.Context) (*pool.Lease, error)
	TryAcquire() (*pool.Lease, bool)
	Idle() bool
	IdleChanged() <-chan struct{}
}

type claimAnswer struct {
	Busy     bool   `json:"busy,omitempty"`
	Node     string `json:"node,omitempty"`
	Peer     string `json:"peer,omitempty"`
	Token    string `json:"token,omitempty"`
	Instance string `json:"instance,omitempty"`
	Event    bool   `json:"event,omitempty"` // the instance takes Lambda events
}

func (n *Node) claimSubject(fn, version string) string {
	return n.cfg.Name + ".claim." + fn + "." + version
}

// reservation is an instance held for a claimed request.
type reservation struct {
	lease *pool.Lease
	timer *time.Timer
}

// reservations are this node's instances claimed by other nodes,
// by token.
type reservations struct {
	mu sync.Mutex
	m  map[string]*reservation
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (rs *reservations) add(l *pool.Lease) string {
	tok := newToken()
	r := &reservation{lease: l}
	rs.mu.Lock()
	if rs.m == nil {
		rs.m = map[string]*reservation{}
	}
	rs.m[tok] = r
	rs.mu.Unlock()
	r.timer = time.AfterFunc(reserveFor, func() {
		if l := rs.take(tok); l != nil {
			l.Release() // the claimer never came
		}
	})
	return tok
}

// take removes and returns the reservation under tok, once.
func (rs *reservations) take(tok string) *pool.Lease {
	rs.mu.Lock()
	r := rs.m[tok]
	delete(rs.m, tok)
	rs.mu.Unlock()
	if r == nil {
		return nil
	}
	r.timer.Stop()
	return r.lease
}

// releaseAll gives every reserved instance back (the node is leaving).
func (rs *reservations) releaseAll() {
	rs.mu.Lock()
	m := rs.m
	rs.m = nil
	rs.mu.Unlock()
	for _, r := range m {
		r.timer.Stop()
		r.lease.Release()
	}
}

// Offer makes a function version's idle instances claimable by other
// nodes until stop is called: it holds the claim subscription while the
// pool has an idle instance. event says whether its instances take Lambda
// events directly.
func (n *Node) Offer(fn, version string, p LocalPool, event bool) (stop func()) {
	ctx, cancel := context.WithCancel(n.ctx)
	subject := n.claimSubject(fn, version)
	answer := func(m *nats.Msg) {
		a := claimAnswer{Busy: true}
		if l, ok := p.TryAcquire(); ok {
			a = claimAnswer{Node: n.name, Peer: n.members.peer(n.name), Token: n.claims.add(l), Instance: l.InstanceID, Event: event}
		}
		b, _ := json.Marshal(a)
		_ = m.Respond(b)
	}
	var done sync.WaitGroup
	done.Go(func() {
		var sub *nats.Subscription
		defer func() {
			if sub != nil {
				_ = sub.Unsubscribe()
				n.setOffered(subject, false)
			}
		}()
		for {
			idle := p.Idle()
			switch {
			case idle && sub == nil:
				s, err := n.nc.QueueSubscribe(subject, "idle", answer)
				if err == nil {
					// Once the server has it, peers learn of it over the
					// routes within a round trip.
					err = n.nc.Flush()
				}
				if err != nil {
					n.log.Warn("cluster: offering idle instances", "function", fn, "err", err)
				} else {
					sub = s
					n.setOffered(subject, true)
				}
			case !idle && sub != nil:
				_ = sub.Unsubscribe()
				sub = nil
				n.setOffered(subject, false)
			}
			select {
			case <-ctx.Done():
				return
			case <-p.IdleChanged():
			}
		}
	})
	return func() { cancel(); done.Wait() }
}

func (n *Node) setOffered(subject string, on bool) {
	n.offeredMu.Lock()
	defer n.offeredMu.Unlock()
	if n.offered == nil {
		n.offered = map[string]bool{}
	}
	if on {
		n.offered[subject] = true
	} else {
		delete(n.offered, subject)
	}
}

// Offered says whether this node offers idle instances of fn's version
// to the cluster right now (stoke ls shows it).
func (n *Node) Offered(fn, version string) bool {
	n.offeredMu.Lock()
	defer n.offeredMu.Unlock()
	return n.offered[n.claimSubject(fn, version)]
}

func (n *Node) claimTimeout() time.Duration {
	if n.cfg.ClaimTimeout > 0 {
		return n.cfg.ClaimTimeout
	}
	return config.DefaultClaimTimeout
}

// ErrNoneIdle: no node has an idle instance of the function version.
var ErrNoneIdle = errors.New("cluster: no idle instance on any node")

// Claim reserves an idle instance of fn's version on another node and
// returns a lease on it whose Invoke goes there over HTTP.
func (n *Node) Claim(ctx context.Context, fn, version string) (*pool.Lease, error) {
	begin := time.Now()
	subject := n.claimSubject(fn, version)
	// A busy answer may come from a node that just went busy while
	// another is idle: ask once more.
	for try := 0; try < 2; try++ {
		// Bounded (cluster.claim_timeout): past it the gateway cold-starts
		// locally rather than wait on a slow or partitioned NATS.
		cctx, cancel := context.WithTimeout(ctx, n.claimTimeout())
		m, err := n.nc.RequestWithContext(cctx, subject, nil)
		cancel()
		if err != nil {
			if errors.Is(err, nats.ErrNoResponders) {
				return nil, ErrNoneIdle
			}
			return nil, err
		}
		var a claimAnswer
		if err := json.Unmarshal(m.Data, &a); err != nil {
			return nil, err
		}
		if a.Busy {
			continue
		}
		if a.Node == n.name {
			// Our own offer (the local pool freed meanwhile): give it back
			// and let the caller use the pool directly.
			if l := n.claims.take(a.Token); l != nil {
				l.Release()
			}
			return nil, ErrNoneIdle
		}
		return n.remoteLease(a, time.Since(begin)), nil
	}
	return nil, ErrNoneIdle
}
