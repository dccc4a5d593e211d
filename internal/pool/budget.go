package pool

import (
	"sync"

	"github.com/stokehq/stoke/internal/keepalive"
)

// Budget is the node's memory_budget, shared by every pool on the node: the
// memory of live instances (each counted at its function's memory size from
// the moment it starts), kept under a limit by evicting idle instances of
// any function, lowest Greedy-Dual priority first (keepalive.Budget).
//
// Locking. A pool calls the budget with its own lock held, and the budget
// never calls a pool with its lock held: the order is pool, then budget,
// never the reverse. Evicting an instance of another pool therefore takes
// two steps. Under the budget's lock the victim leaves the budget's idle
// set, its memory is released and it is marked evicted; then the pool that
// chose it, after releasing its own lock, asks the victim's pool to stop it
// (Pool.evictIdle, under that pool's lock). If the victim's pool tries to
// reuse it in between, the budget answers that it was evicted (claim), and
// that pool stops it itself. Either way no request ever lands on an evicted
// instance, and no lock is taken while one of another pool is held. Until
// the victim's process has exited the node is over the budget by that much.
type Budget struct {
	mu    sync.Mutex
	b     *keepalive.Budget[*instance]
	limit int
	live  map[*instance]int // memory of every instance counted, by instance
}

// NewBudget makes a node budget of limitMB; nil (no budget) when limitMB
// is 0. A nil *Budget is valid: every instance fits.
func NewBudget(limitMB int) *Budget {
	if limitMB <= 0 {
		return nil
	}
	return &Budget{b: keepalive.NewBudget[*instance](limitMB), limit: limitMB, live: map[*instance]int{}}
}

// UsedMB is the memory of the instances counted now.
func (b *Budget) UsedMB() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.UsedMB()
}

// LimitMB is the budget's limit (0: none).
func (b *Budget) LimitMB() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit
}

// reserve makes room for a new instance of mb and counts it. For a
// request's instance it evicts what it can and the instance starts anyway;
// for a pre-warm (value: what the function's idle instances are worth) it
// evicts only instances worth less, and only if that makes room: ok false
// means do not start it. Victims are the caller's to stop, after it
// releases its own lock (Pool.evictIdle).
func (b *Budget) reserve(in *instance, mb int, prewarm bool, value float64) (victims []*instance, ok bool) {
	if b == nil {
		return nil, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	below := keepalive.Inf
	if prewarm {
		below = b.b.Clock() + value
	}
	victims, fits := b.b.Evict(mb, below, func(v *instance) bool { return v.owner.keptWarm() })
	if prewarm && !fits {
		return nil, false
	}
	for _, v := range victims {
		delete(b.live, v)
		v.budgetEvicted = true
	}
	b.b.Started(mb)
	b.live[in] = mb
	return victims, true
}

// idle says in is idle, worth value (Plan.Value) to its function.
func (b *Budget) idle(in *instance, value float64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if mb, ok := b.live[in]; ok {
		b.b.Idle(in, mb, value)
	}
}

// claim takes in out of the idle set for a request; false means it was
// evicted meanwhile and must not serve.
func (b *Budget) claim(in *instance) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if in.budgetEvicted {
		return false
	}
	b.b.Busy(in)
	return true
}

// stopped releases in's memory, unless an eviction already did.
func (b *Budget) stopped(in *instance) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if mb, ok := b.live[in]; ok {
		b.b.Stopped(in, mb)
		delete(b.live, in)
	}
}
