package keepalive

import "container/heap"

// Budget is a node-wide memory budget over live instances, with
// Greedy-Dual eviction of idle ones (FaaSCache, ASPLOS 2021): an instance
// going idle gets priority H = L + its function's Plan.Value (frequency ×
// init cost / memory); under pressure the idle instance with the lowest H
// goes first, and L (the clock) becomes its H, so what was kept long without
// use ages out. With Value 0 everywhere this is least-recently-used.
//
// Busy and starting instances are never evicted: the budget is met by
// stopping idle ones, and a request's instance starts even when nothing is
// left to evict. K identifies an instance. Not safe for concurrent use.
type Budget[K comparable] struct {
	limitMB int
	usedMB  int
	clock   float64
	idle    budgetHeap[K]
	at      map[K]*budgetEntry[K]
	seq     uint64
}

type budgetEntry[K comparable] struct {
	key K
	mb  int
	h   float64
	seq uint64 // ties: older idle first
	i   int
}

// NewBudget makes a budget of limitMB.
func NewBudget[K comparable](limitMB int) *Budget[K] {
	return &Budget[K]{limitMB: limitMB, at: map[K]*budgetEntry[K]{}}
}

// UsedMB is the memory of live instances.
func (b *Budget[K]) UsedMB() int { return b.usedMB }

// Clock is Greedy-Dual's L.
func (b *Budget[K]) Clock() float64 { return b.clock }

// Started counts an instance's memory from its start.
func (b *Budget[K]) Started(mb int) { b.usedMB += mb }

// Idle records that k (of mb) is idle, worth value.
func (b *Budget[K]) Idle(k K, mb int, value float64) {
	b.Busy(k)
	b.seq++
	e := &budgetEntry[K]{key: k, mb: mb, h: b.clock + value, seq: b.seq}
	b.at[k] = e
	heap.Push(&b.idle, e)
}

// Busy records that k is no longer idle.
func (b *Budget[K]) Busy(k K) {
	if e, ok := b.at[k]; ok {
		heap.Remove(&b.idle, e.i)
		delete(b.at, k)
	}
}

// Stopped releases k's memory (idle or not).
func (b *Budget[K]) Stopped(k K, mb int) {
	b.Busy(k)
	b.usedMB -= mb
}

// Evict picks idle instances to stop so that mb more fit, lowest priority
// first, and releases their memory: the caller stops them. For a request's
// instance (below = +Inf) it evicts what it can and reports whether mb now
// fits; for a pre-warm worth below it evicts only instances worth less, and
// nothing at all unless that makes mb fit. An instance keep says to keep
// (a keep_warm one) is never evicted.
func (b *Budget[K]) Evict(mb int, below float64, keep func(K) bool) (victims []K, fits bool) {
	var taken, kept []*budgetEntry[K]
	free := b.limitMB - b.usedMB
	for free < mb && b.idle.Len() > 0 && b.idle[0].h < below {
		e := heap.Pop(&b.idle).(*budgetEntry[K])
		if keep != nil && keep(e.key) {
			kept = append(kept, e)
			continue
		}
		taken = append(taken, e)
		free += e.mb
	}
	for _, e := range kept {
		heap.Push(&b.idle, e)
	}
	if free < mb && len(taken) > 0 && below < inf {
		for _, e := range taken { // not enough: keep them all
			heap.Push(&b.idle, e)
		}
		return nil, false
	}
	for _, e := range taken {
		delete(b.at, e.key)
		b.usedMB -= e.mb
		b.clock = max(b.clock, e.h)
		victims = append(victims, e.key)
	}
	return victims, free >= mb
}

const inf = 1e308

// Inf is Evict's "below" for a request's instance: anything idle may go.
const Inf = inf

type budgetHeap[K comparable] []*budgetEntry[K]

func (h budgetHeap[K]) Len() int { return len(h) }
func (h budgetHeap[K]) Less(i, j int) bool {
	if h[i].h != h[j].h {
		return h[i].h < h[j].h
	}
	return h[i].seq < h[j].seq
}
func (h budgetHeap[K]) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].i = i; h[j].i = j }
func (h *budgetHeap[K]) Push(x any) {
	e := x.(*budgetEntry[K])
	e.i = len(*h)
	*h = append(*h, e)
}
func (h *budgetHeap[K]) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
