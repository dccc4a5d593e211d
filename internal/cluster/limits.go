package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Cluster-wide limits.
//
// max_instances: one KV key per function version holds every node's
// instance count ({"n1": 2, "n3": 1}). A node starts an instance only
// after a compare-and-swap that raises its own count while the sum over
// live nodes stays within max_instances; it lowers its count when an
// instance is gone. Counts of nodes not heard from for ten heartbeats are
// ignored and dropped at the next write. Failure modes (docs/cluster.md):
// without a JetStream quorum no instance starts (warm ones keep serving);
// a node cut off from the majority keeps its instances while the majority
// stops counting them, so during a partition the cluster can run up to
// max_instances on each side.
//
// keep_warm: each live node keeps a share of the function's keep_warm:
// N split over the live nodes sorted by name, starting at an offset from
// the function's name so small keep_warm values land on different nodes
// for different functions. A lost node's share moves to the others at the
// next membership change.

// KeepWarmShare is node's share of keepWarm among alive (sorted).
func KeepWarmShare(fn, node string, keepWarm int, alive []string) int {
	k := len(alive)
	i := slices.Index(alive, node)
	if k == 0 || i < 0 {
		return keepWarm
	}
	h := fnv.New32a()
	h.Write([]byte(fn))
	pos := (i - int(h.Sum32()%uint32(k)) + k) % k
	share := keepWarm / k
	if pos < keepWarm%k {
		share++
	}
	return share
}

// Limit is a function version's cluster-wide max_instances as a pool
// Limiter (pool.Limiter).
type Limit struct {
	n   *Node
	key string
	max int
	// rescale is called when room may have appeared (a count went down,
	// a node was lost).
	rescale func()

	// casMu makes each read-count-put-note of this node's count one
	// step: a Take whose put is in flight has not counted its instance
	// yet, and another Take or write computing meanwhile (from the newer
	// value the watch already delivered) would store this node's count
	// one short, and let the cluster go over max_instances.
	casMu sync.Mutex
	mu    sync.Mutex
	local int                     // this node's instances holding room
	cache jetstream.KeyValueEntry // the key's latest value seen
	dirty chan struct{}           // a Give to write
	// retrying: a rescale is scheduled after a failed count (rescaleSoon).
	retrying atomic.Bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// NewLimit bounds fn's version at max instances in the cluster. Start
// it once its pool exists; Close it after the pool.
func (n *Node) NewLimit(fn, version string, max int) *Limit {
	return &Limit{n: n, key: "count." + fn + "." + version, max: max, dirty: make(chan struct{}, 1), cancel: func() {}}
}

// Start follows the counts; rescale is called when room may have
// appeared (a count went down, a node was lost).
func (l *Limit) Start(rescale func()) {
	ctx, cancel := context.WithCancel(l.n.ctx)
	l.rescale, l.cancel = rescale, cancel
	l.wg.Go(func() { l.watch(ctx) })
	l.wg.Go(func() { l.writer(ctx) })
}

// Close stops the limit's watcher and writer; this node's count is set to
// zero (its pool is closed).
func (l *Limit) Close() {
	l.cancel()
	l.wg.Wait()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.n.ctx), 2*time.Second)
	defer cancel()
	l.mu.Lock()
	l.local = 0
	l.mu.Unlock()
	_ = l.write(ctx)
}

func (l *Limit) watch(ctx context.Context) {
	w, err := l.n.kvCount.Watch(ctx, l.key)
	if err != nil {
		l.n.log.Warn("cluster: watching instance counts", "key", l.key, "err", err)
		return
	}
	defer w.Stop()
	changed, stop := l.n.WatchMembers()
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			l.rescale()
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue
			}
			l.mu.Lock()
			if l.cache == nil || e.Revision() > l.cache.Revision() {
				l.cache = e
			}
			l.mu.Unlock()
			l.rescale()
		}
	}
}

// counts decodes an entry, keeping live nodes only, with this node's
// count replaced by what it holds now.
func (l *Limit) counts(e jetstream.KeyValueEntry, local int) (map[string]int, int) {
	m := map[string]int{}
	if e != nil && e.Operation() == jetstream.KeyValuePut {
		_ = json.Unmarshal(e.Value(), &m)
	}
	total := 0
	for node, c := range m {
		if node == l.n.name || c <= 0 || !l.n.members.counted(node, countedFor*l.n.o.Heartbeat) {
			delete(m, node)
			continue
		}
		total += c
	}
	m[l.n.name] = local
	return m, total + local
}

// Take reserves room for one more instance on this node.
func (l *Limit) Take(ctx context.Context) bool {
	l.casMu.Lock()
	defer l.casMu.Unlock()
	for try := 0; try < 20 && ctx.Err() == nil; try++ {
		l.mu.Lock()
		e, local := l.cache, l.local
		l.mu.Unlock()
		m, total := l.counts(e, local+1)
		if total > l.max {
			if try == 0 && e != nil {
				// The cache may be behind: look once more before refusing.
				l.refresh(ctx)
				continue
			}
			return false
		}
		rev, err := l.put(ctx, m, e)
		if err == nil {
			l.mu.Lock()
			l.local++
			l.noteLocked(rev, m)
			l.mu.Unlock()
			return true
		}
		if !isWrongRevision(err) {
			l.n.log.Warn("cluster: counting an instance", "key", l.key, "err", err)
			// No quorum (a leader election, a partition): no new instance
			// now; ask the pool to look again soon, as no count update may
			// come to wake it.
			l.rescaleSoon()
			return false
		}
		l.refresh(ctx)
	}
	return false
}

// rescaleSoon calls rescale after a second, once however often it is
// asked meanwhile.
func (l *Limit) rescaleSoon() {
	if !l.retrying.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(time.Second, func() {
		l.retrying.Store(false)
		if l.n.ctx.Err() == nil && l.rescale != nil {
			l.rescale()
		}
	})
}

// Give returns room: the instance is gone. The write happens in the
// background (the pool calls it under its lock).
func (l *Limit) Give() {
	l.mu.Lock()
	l.local--
	l.mu.Unlock()
	select {
	case l.dirty <- struct{}{}:
	default:
	}
}

func (l *Limit) writer(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.dirty:
		}
		for try := 0; try < 50 && ctx.Err() == nil; try++ {
			if l.write(ctx) == nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// write stores this node's current count.
func (l *Limit) write(ctx context.Context) error {
	l.casMu.Lock()
	defer l.casMu.Unlock()
	l.mu.Lock()
	e, local := l.cache, l.local
	l.mu.Unlock()
	m, _ := l.counts(e, local)
	rev, err := l.put(ctx, m, e)
	if err != nil {
		l.refresh(ctx)
		return err
	}
	l.mu.Lock()
	l.noteLocked(rev, m)
	l.mu.Unlock()
	return nil
}

func (l *Limit) put(ctx context.Context, m map[string]int, e jetstream.KeyValueEntry) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	b, _ := json.Marshal(m)
	if e == nil {
		return l.n.kvCount.Create(ctx, l.key, b)
	}
	return l.n.kvCount.Update(ctx, l.key, b, e.Revision())
}

// noteLocked caches what this node just wrote, so the next Take needs
// no read.
func (l *Limit) noteLocked(rev uint64, m map[string]int) {
	if l.cache != nil && l.cache.Revision() >= rev {
		return
	}
	b, _ := json.Marshal(m)
	l.cache = &written{key: l.key, value: b, rev: rev}
}

func (l *Limit) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	e, err := l.n.kvCount.Get(ctx, l.key)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		l.cache = nil
		return
	}
	if l.cache == nil || e.Revision() >= l.cache.Revision() {
		l.cache = e
	}
}

// written is a KV entry this node wrote, as the cache holds it.
type written struct {
	key   string
	value []byte
	rev   uint64
}

func (w *written) Bucket() string                  { return "" }
func (w *written) Key() string                     { return w.key }
func (w *written) Value() []byte                   { return w.value }
func (w *written) Revision() uint64                { return w.rev }
func (w *written) Created() time.Time              { return time.Time{} }
func (w *written) Delta() uint64                   { return 0 }
func (w *written) Operation() jetstream.KeyValueOp { return jetstream.KeyValuePut }
