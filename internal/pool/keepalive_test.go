package pool_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/keepalive"
	"github.com/stokehq/stoke/internal/pool"
)

// clock is the time the pools and their policies are told: the tests move
// it; the processes run in real time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// once runs one request through p at the clock's time.
func once(t *testing.T, p *pool.Pool) *pool.Lease {
	t.Helper()
	l := acquire(t, p)
	call(t, l, "")
	l.Release()
	return l
}

// A function invoked every 15 minutes, as a timer does, is learnt as
// periodic: between ticks its instance is let go, and a real instance is
// started ahead of the next tick, which finds it warm.
func TestPrewarmAheadOfPeriodicRequest(t *testing.T) {
	c := newClock()
	t0 := c.Now()
	p := newEnv(t).pool(pool.Options{MaxInstances: 2, MemoryMB: 128, Clock: c.Now,
		Policy: keepalive.NewAdaptive(keepalive.Function{MemoryMB: 128})})
	for i := range 4 {
		c.Set(t0.Add(time.Duration(i) * 15 * time.Minute))
		once(t, p)
	}
	ka := p.KeepAlive()
	tick := t0.Add(60 * time.Minute)
	if ka.NextPrewarm.IsZero() || !ka.NextPrewarm.Before(tick) || tick.Sub(ka.NextPrewarm) > time.Minute || ka.KeepAlive != 0 {
		t.Fatalf("after 4 ticks 15 minutes apart: %+v; want unloaded, a pre-warm within a minute before %s", ka, tick.Format(time.TimeOnly))
	}
	// Let go between ticks: the idle instance stops.
	waitFor(t, "the instance to be let go between ticks", func() bool { return len(p.Instances()) == 0 })
	c.Set(ka.NextPrewarm)
	waitFor(t, "the pre-warm to start", func() bool {
		ins := p.Instances()
		return len(ins) == 1 && ins[0].State == pool.StateIdle && ins[0].Prewarm
	})
	warm := p.Instances()[0].ID
	c.Set(tick)
	l := once(t, p)
	if l.Cold || l.InstanceID != warm {
		t.Errorf("the tick's request: cold %v on %s; want warm on the pre-warmed %s", l.Cold, l.InstanceID, warm)
	}
	if ka := p.KeepAlive(); ka.Prewarms != 1 || ka.PrewarmsUnused != 0 {
		t.Errorf("after the tick: %+v; want 1 pre-warm, used", ka)
	}
}

// Under a node memory budget a cold start evicts the idle instance worth
// least to its function (Greedy-Dual: requests per hour × init / memory),
// not the least recently used one.
func TestBudgetEvictsGreedyDualVictim(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	budget := pool.NewBudget(256)
	mk := func() *pool.Pool {
		return e.pool(pool.Options{MaxInstances: 2, MemoryMB: 128, Clock: c.Now, Budget: budget,
			Policy: keepalive.NewAdaptive(keepalive.Function{MemoryMB: 128})})
	}
	busy, rare, other := mk(), mk(), mk()
	for i := range 20 { // 20 requests: worth keeping
		c.Set(c.Now().Add(time.Duration(i) * time.Second))
		once(t, busy)
	}
	c.Set(c.Now().Add(time.Minute))
	once(t, rare) // 1 request, and the most recently used
	if used := budget.UsedMB(); used != 256 {
		t.Fatalf("budget used %d MB, want 256 (two instances of 128)", used)
	}
	rareID, busyID := rare.Instances()[0].ID, busy.Instances()[0].ID
	c.Set(c.Now().Add(time.Second))
	if l := once(t, other); !l.Cold {
		t.Error("the third function's first request was not a cold start")
	}
	waitFor(t, "the victim to stop", func() bool { return len(rare.Instances()) == 0 })
	if ins := busy.Instances(); len(ins) != 1 || ins[0].ID != busyID {
		t.Errorf("the busy function's instance %s was stopped: %+v", busyID, ins)
	}
	if r, b := rare.KeepAlive().Evictions, busy.KeepAlive().Evictions; r != 1 || b != 0 {
		t.Errorf("evictions: rare %d, busy %d; want 1, 0 (%s was the victim)", r, b, rareID)
	}
	if used := budget.UsedMB(); used != 256 {
		t.Errorf("budget used %d MB after the eviction, want 256", used)
	}
	// The evicted function's next request is a cold start, and room is
	// made again.
	if l := once(t, rare); !l.Cold {
		t.Error("a request to the evicted function was warm")
	}
}

// keep_warm is a floor under every policy and the budget: a day later
// adaptive lets every other idle instance go, and a cold start elsewhere
// under a full budget does not evict the keep_warm instance.
func TestKeepWarmFloorHolds(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	budget := pool.NewBudget(256)
	p := e.pool(pool.Options{MaxInstances: 3, KeepWarm: 1, MemoryMB: 128, Clock: c.Now, Budget: budget,
		Policy: keepalive.NewAdaptive(keepalive.Function{MemoryMB: 128})})
	waitFor(t, "the keep_warm instance", func() bool { return countState(p, pool.StateIdle) == 1 })
	a, b := acquire(t, p), acquire(t, p) // two at once: a scale-out instance
	a.Release()
	b.Release()
	if n := len(p.Instances()); n != 2 {
		t.Fatalf("%d instances, want 2", n)
	}
	c.Set(c.Now().Add(48 * time.Hour))
	waitFor(t, "the scale-out instance to be let go", func() bool { return len(p.Instances()) == 1 })
	kept := p.Instances()[0].ID
	other := e.pool(pool.Options{MaxInstances: 2, MemoryMB: 256, Clock: c.Now, Budget: budget})
	once(t, other) // needs 256 of 256 MB: nothing it may evict
	c.Set(c.Now().Add(48 * time.Hour))
	waitFor(t, "the other function's idle instance to be let go", func() bool { return len(other.Instances()) == 0 })
	if ins := p.Instances(); len(ins) != 1 || ins[0].ID != kept || ins[0].State != pool.StateIdle {
		t.Errorf("keep_warm instance %s: %+v", kept, ins)
	}
	if ev := p.KeepAlive().Evictions; ev != 0 {
		t.Errorf("%d keep_warm evictions", ev)
	}
}

// The keep-alive loop sleeps until its plan is due: with an idle instance
// to let go in 10 minutes and nothing happening, it applies the plan about
// once a second (its longest sleep), not in a loop that woke itself (it
// took most of a CPU).
func TestKeepAliveLoopSleepsWhenIdle(t *testing.T) {
	for name, pol := range map[string]keepalive.Policy{"fixed": &keepalive.Fixed{D: 10 * time.Minute},
		"adaptive": keepalive.NewAdaptive(keepalive.Function{MemoryMB: 128})} {
		t.Run(name, func(t *testing.T) {
			p := newEnv(t).pool(pool.Options{MaxInstances: 2, KeepWarm: 1, MemoryMB: 128, Policy: pol})
			waitFor(t, "the keep_warm instance", func() bool { return countState(p, pool.StateIdle) == 1 })
			a, b := acquire(t, p), acquire(t, p) // two at once: an instance above keep_warm, due to go in 10 minutes
			a.Release()
			b.Release()
			waitFor(t, "two idle instances", func() bool { return countState(p, pool.StateIdle) == 2 })
			n0 := pool.KeepAliveApplies(p)
			// A window, not a synchronisation: the loop's rate is what is tested.
			time.Sleep(500 * time.Millisecond)
			if n := pool.KeepAliveApplies(p) - n0; n > 10 {
				t.Errorf("the keep-alive loop applied its plan %d times in 500 ms with an idle instance", n)
			}
		})
	}
}
