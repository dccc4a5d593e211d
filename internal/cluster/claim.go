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
	// The timer is set before the lock is let go: take reads it, and may
	// run as soon as the token is out.
	r.timer = time.AfterFunc(reserveFor, func() {
		if l := rs.take(tok); l != nil {
			l.Release() // the claimer never came
		}
	})
	rs.m[tok] = r
	rs.mu.Unlock()
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

// offerLinger is how long a node whose last idle instance was just taken
// keeps its claim subscription, answering busy, before it drops it: a
// warm instance that frees within it (a request of a few ms) costs NATS
// nothing, where a subscribe and an unsubscribe per request, each
// propagated to every server, cost every local warm request on a cluster
// node ~165 µs (docs/BENCHMARKS.md). A lingering node drops the
// subscription as soon as it answers a claim busy, and before its own
// gateway claims, so no claimer is asked twice by it.
const offerLinger = 20 * time.Millisecond

// offer is a function version's claim subscription on this node.
type offer struct {
	n       *Node
	subject string
	p       LocalPool
	event   bool
	kick    chan struct{} // the subscription was dropped: look again

	mu  sync.Mutex
	sub *nats.Subscription
}

// Offer makes a function version's idle instances claimable by other
// nodes until stop is called: it holds the claim subscription while the
// pool has an idle instance, and for up to offerLinger after the last one
// was taken. event says whether its instances take Lambda events
// directly.
func (n *Node) Offer(fn, version string, p LocalPool, event bool) (stop func()) {
	ctx, cancel := context.WithCancel(n.ctx)
	o := &offer{n: n, subject: n.claimSubject(fn, version), p: p, event: event, kick: make(chan struct{}, 1)}
	n.offeredMu.Lock()
	if n.offers == nil {
		n.offers = map[string]*offer{}
	}
	n.offers[o.subject] = o
	n.offeredMu.Unlock()
	var done sync.WaitGroup
	done.Go(func() {
		defer func() {
			n.offeredMu.Lock()
			if n.offers[o.subject] == o {
				delete(n.offers, o.subject)
			}
			n.offeredMu.Unlock()
			o.drop(nil)
		}()
		linger := time.NewTimer(offerLinger)
		linger.Stop()
		defer linger.Stop()
		for {
			if p.Idle() {
				linger.Stop()
				if err := o.subscribe(); err != nil {
					n.log.Warn("cluster: offering idle instances", "function", fn, "err", err)
				}
			} else if o.subscribed() {
				linger.Reset(offerLinger)
			}
			select {
			case <-ctx.Done():
				return
			case <-p.IdleChanged():
			case <-o.kick:
			case <-linger.C:
				if !p.Idle() {
					o.drop(nil)
				}
			}
		}
	})
	return func() { cancel(); done.Wait() }
}

// answer answers a claim: a reserved idle instance, or busy — and then
// the node stops offering until an instance is idle again, so the
// claimer's next ask goes to another node (NATS routes the unsubscribe
// ahead of the answer).
func (o *offer) answer(m *nats.Msg) {
	a := claimAnswer{Busy: true}
	// Without its peer listener (SetPeer not called yet) this node's
	// instances cannot be reached: busy.
	if peer := o.n.members.peer(o.n.name); peer != "" {
		if l, ok := o.p.TryAcquire(); ok {
			a = claimAnswer{Node: o.n.name, Peer: peer, Token: o.n.claims.add(l), Instance: l.InstanceID, Event: o.event}
		} else {
			o.drop(m.Sub)
		}
	}
	b, _ := json.Marshal(a)
	_ = m.Respond(b)
}

func (o *offer) subscribe() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sub != nil {
		return nil
	}
	s, err := o.n.nc.QueueSubscribe(o.subject, "idle", o.answer)
	if err == nil {
		// Once the server has it, peers learn of it over the routes
		// within a round trip.
		err = o.n.nc.Flush()
	}
	if err != nil {
		if s != nil {
			_ = s.Unsubscribe()
		}
		return err
	}
	o.sub = s
	return nil
}

func (o *offer) subscribed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sub != nil
}

// drop unsubscribes (only from sub, when not nil: an answer of an older
// subscription must not drop a newer one) and has the loop look again.
func (o *offer) drop(sub *nats.Subscription) {
	o.mu.Lock()
	if o.sub == nil || (sub != nil && o.sub != sub) {
		o.mu.Unlock()
		return
	}
	_ = o.sub.Unsubscribe()
	o.sub = nil
	o.mu.Unlock()
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// dropOwnOffer stops offering fn's version on this node while it has no
// idle instance, before this node claims one elsewhere: NATS prefers a
// queue subscriber on the claimer's own server, which would answer busy.
func (n *Node) dropOwnOffer(subject string) {
	n.offeredMu.Lock()
	o := n.offers[subject]
	n.offeredMu.Unlock()
	if o != nil && !o.p.Idle() {
		o.drop(nil)
	}
}

// Offered says whether this node offers idle instances of fn's version
// to the cluster right now (stoke ls shows it): subscribed, with an idle
// instance (a lingering subscription only answers busy).
func (n *Node) Offered(fn, version string) bool {
	n.offeredMu.Lock()
	o := n.offers[n.claimSubject(fn, version)]
	n.offeredMu.Unlock()
	return o != nil && o.subscribed() && o.p.Idle()
}

func (n *Node) claimTimeout() time.Duration {
	if n.cfg.ClaimTimeout > 0 {
		return n.cfg.ClaimTimeout
	}
	return config.DefaultClaimTimeout
}

// claimTries bounds the asks of one claim: each busy answer takes its
// node out of the claim subject, so each ask goes to another node.
const claimTries = 4

// ErrNoneIdle: no node has an idle instance of the function version.
var ErrNoneIdle = errors.New("cluster: no idle instance on any node")

// Claim reserves an idle instance of fn's version on another node and
// returns a lease on it whose Invoke goes there over HTTP.
func (n *Node) Claim(ctx context.Context, fn, version string) (*pool.Lease, error) {
	begin := time.Now()
	subject := n.claimSubject(fn, version)
	n.dropOwnOffer(subject)
	// A busy answer comes from a node that went busy (or lingers,
	// offerLinger) while another may be idle; that node has stopped
	// offering, so asking again reaches another one.
	for try := 0; try < claimTries; try++ {
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
