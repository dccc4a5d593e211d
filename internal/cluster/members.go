package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// lostAfter heartbeats without news, a node is lost: its keep_warm share
// moves. countedFor heartbeats without news, its instances stop counting
// against max_instances: longer, so a node slowed down (a loaded machine
// delays its heartbeats) is not taken for lost while its instances run.
const (
	lostAfter  = 3
	countedFor = 10
)

// members knows which nodes are alive: each node publishes a heartbeat
// every period on a core NATS subject and puts its key in the nodes
// bucket; every node listens to both. A node not heard from for three
// heartbeats is lost. The core subject carries liveness: it needs only
// the routes, so a JetStream leader election (seconds, after a node
// holding leaders dies) does not silence everyone. The bucket tells a
// node booting who was there. NATS carries the heartbeats; the only rule
// here is the timeout.
type members struct {
	n *Node
	// watchers are signalled on every change; buffered: a signal, not a
	// queue.
	watchers map[chan struct{}]bool

	mu      sync.Mutex
	started time.Time // when this node started watching
	seen    map[string]time.Time
	minLag  map[string]time.Duration
	info    map[string]NodeInfo
	last    []string // alive at the last check

	storing  atomic.Bool // a heartbeat's put to the bucket is under way
	stopOnce sync.Once
	watcher  jetstream.KeyWatcher
	sub      *nats.Subscription
}

// NodeInfo is what a node says about itself in its heartbeat.
type NodeInfo struct {
	Name string `json:"name"`
	// Peer is the address of its node-to-node HTTP listener.
	Peer    string    `json:"peer"`
	Started time.Time `json:"started"`
}

func newMembers(n *Node) *members {
	return &members{n: n, watchers: map[chan struct{}]bool{}, seen: map[string]time.Time{}, minLag: map[string]time.Duration{}, info: map[string]NodeInfo{}}
}

func (m *members) start(ctx context.Context) error {
	self := NodeInfo{Name: m.n.name, Started: time.Now()}
	m.mu.Lock()
	m.started = time.Now()
	m.seen[m.n.name] = time.Now()
	m.info[m.n.name] = self
	m.last = []string{m.n.name}
	m.mu.Unlock()
	sub, err := m.n.nc.Subscribe(m.n.beatSubject(), m.heard)
	if err != nil {
		return fmt.Errorf("cluster: listening to heartbeats: %w", err)
	}
	m.sub = sub
	if err := m.beat(ctx); err != nil {
		return err
	}
	w, err := m.n.kvNodes.WatchAll(m.n.ctx) // lives as long as the node
	if err != nil {
		return fmt.Errorf("cluster: watching nodes: %w", err)
	}
	m.watcher = w
	m.n.wg.Add(2)
	go m.watch(w)
	go m.loop()
	return nil
}

// SetPeer sets the peer address this node announces from its next
// heartbeat on.
func (m *members) setPeer(addr string) {
	m.mu.Lock()
	i := m.info[m.n.name]
	i.Peer = addr
	m.info[m.n.name] = i
	m.mu.Unlock()
}

// beat publishes this node's heartbeat on the core subject and stores it
// in the bucket.
func (m *members) beat(ctx context.Context) error {
	b, err := m.publish()
	if err != nil {
		return err
	}
	return m.store(ctx, b)
}

// publish says this node is alive on the core subject, and returns what
// it said.
func (m *members) publish() ([]byte, error) {
	m.mu.Lock()
	b, _ := json.Marshal(m.info[m.n.name])
	m.mu.Unlock()
	if err := m.n.nc.Publish(m.n.beatSubject(), b); err != nil {
		return nil, fmt.Errorf("cluster: heartbeat: %w", err)
	}
	return b, nil
}

// store puts a heartbeat in the nodes bucket. It may wait out a leader
// election (seconds).
func (m *members) store(ctx context.Context, b []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := m.n.kvNodes.Put(ctx, m.n.name, b); err != nil {
		return fmt.Errorf("cluster: heartbeat: %w", err)
	}
	return nil
}

func (m *members) watch(w jetstream.KeyWatcher) {
	defer m.n.wg.Done()
	initial := true
	for e := range w.Updates() {
		if e == nil {
			initial = false // the watcher has replayed what was stored
			continue
		}
		if e.Operation() != jetstream.KeyValuePut {
			continue
		}
		seen := time.Now()
		if initial && seen.Sub(e.Created()) > 3*m.n.o.Heartbeat {
			// A stored heartbeat of a node that may be long gone: only a
			// fresh one makes it alive. (Live updates use this node's
			// clock, so clock skew between machines does not matter.)
			continue
		}
		var ni NodeInfo
		if json.Unmarshal(e.Value(), &ni) != nil || ni.Name != e.Key() {
			continue
		}
		m.mu.Lock()
		// When the heartbeat was sent, in this node's clock: its stream's
		// timestamp plus the smallest lag seen from that node (the clocks'
		// offset and the least delay). A backlog delivered late under load
		// must not make a silent node look alive.
		lag := seen.Sub(e.Created())
		if ml, ok := m.minLag[ni.Name]; !ok || lag < ml {
			m.minLag[ni.Name] = lag
		}
		if sent := e.Created().Add(m.minLag[ni.Name]); sent.After(m.seen[ni.Name]) {
			m.seen[ni.Name] = sent
		}
		m.learn(ni)
		m.mu.Unlock()
		m.check()
	}
}

func (n *Node) beatSubject() string { return n.cfg.Name + ".nodes.beat" }

// heard takes a heartbeat from the core subject (this node's own too).
func (m *members) heard(msg *nats.Msg) {
	var ni NodeInfo
	if json.Unmarshal(msg.Data, &ni) != nil || ni.Name == "" {
		return
	}
	m.mu.Lock()
	m.seen[ni.Name] = time.Now()
	m.learn(ni)
	m.mu.Unlock()
	m.check()
}

// learn takes another node's info from its heartbeat. This node's own is
// set here, not learned: a heartbeat of its own sent before setPeer, heard
// or read back late, would forget its peer address, and a claim answered
// meanwhile sent the claimer to "http:///…" (502s in
// TestClusterLimitsAndNodeLoss). The caller holds mu.
func (m *members) learn(ni NodeInfo) {
	if ni.Name != m.n.name {
		m.info[ni.Name] = ni
	}
}

func (m *members) loop() {
	defer m.n.wg.Done()
	t := time.NewTicker(m.n.o.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-m.n.ctx.Done():
			return
		case <-t.C:
		}
		// The core heartbeat goes out every period whatever the bucket
		// does: a put waiting out a leader election (up to 2 s) held it
		// back for longer than lostAfter periods, and the other nodes
		// took this live node for lost (TestMembership, once in a full
		// make test). One put at a time; a beat while one waits is not
		// stored (the next one will be).
		b, err := m.publish()
		if err != nil {
			if m.n.ctx.Err() == nil {
				m.n.log.Warn("cluster: heartbeat not sent", "err", err)
			}
		} else if m.storing.CompareAndSwap(false, true) {
			m.n.wg.Add(1)
			go func() {
				defer m.n.wg.Done()
				defer m.storing.Store(false)
				if err := m.store(m.n.ctx, b); err != nil && m.n.ctx.Err() == nil {
					m.n.log.Warn("cluster: heartbeat not stored", "err", err)
				}
			}()
		}
		m.check()
	}
}

// check recomputes the alive set and signals a change.
func (m *members) check() {
	m.mu.Lock()
	now := m.aliveLocked()
	defer m.mu.Unlock()
	if slices.Equal(now, m.last) {
		return
	}
	m.last = now
	for ch := range m.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (m *members) alive() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.aliveLocked()
}

func (m *members) aliveLocked() []string { return m.heardLocked(lostAfter * m.n.o.Heartbeat) }

func (m *members) heardLocked(d time.Duration) []string {
	limit := m.latestLocked().Add(-d)
	out := []string{m.n.name}
	for name, t := range m.seen {
		if name != m.n.name && t.After(limit) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// latestLocked is when the newest heartbeat this node has heard (its own
// included) was sent: silence is measured against it, not the clock. When
// the nodes bucket stalls (its JetStream leader lost and a new one being
// elected takes seconds, or this node cut off from the majority) no
// heartbeat gets through, this node's own neither, and nobody is taken
// for lost; when one node dies the others' heartbeats keep coming and it
// alone falls behind.
func (m *members) latestLocked() time.Time {
	var latest time.Time
	for _, t := range m.seen {
		if t.After(latest) {
			latest = t
		}
	}
	return latest
}

// peer is a node's announced peer address.
func (m *members) peer(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.info[name].Peer
}

func (m *members) stop() {
	m.stopOnce.Do(func() {
		if m.watcher != nil {
			_ = m.watcher.Stop()
		}
		if m.sub != nil {
			_ = m.sub.Unsubscribe()
		}
	})
}

// counted says whether node's instances still count against
// max_instances: it was heard from within window of the newest heartbeat
// (latestLocked) — or, never heard from,
// this node has not been up for window yet (at boot a node has not seen
// the others' heartbeats, and must not drop their counts).
func (m *members) counted(node string, window time.Duration) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.seen[node]
	if !ok {
		t = m.started
	}
	return m.latestLocked().Sub(t) <= window
}

// watch returns a channel signalled whenever the alive set changes, and
// a function to stop.
func (m *members) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	m.mu.Lock()
	m.watchers[ch] = true
	m.mu.Unlock()
	return ch, func() {
		m.mu.Lock()
		delete(m.watchers, ch)
		m.mu.Unlock()
	}
}
