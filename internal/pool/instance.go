package pool

import (
	"sort"
	"time"

	"github.com/stokehq/stoke/internal/runtime"
)

type instance struct {
	id       string
	owner    *Pool
	rt       runtime.Instance // nil while starting
	state    State
	inflight int
	// awaiting counts released invocations whose runtime is not free yet
	// (runtime.Settling); the instance is busy meanwhile.
	awaiting  int
	served    int64
	completed int64     // invocations released healthy
	ready     time.Time // when it became ready (wall clock)
	inFree    bool
	slot      bool // holds a Limiter grant (cluster.go)
	created   time.Time
	lastUsed  time.Time // by Options.Clock: when it last became idle
	prewarm   bool      // started ahead of a predicted request
	// budgetEvicted: the memory budget chose it to go (guarded by the
	// budget's lock, not the pool's).
	budgetEvicted bool
}

// Info describes one live instance, for `stoke ls` and the admin API.
type Info struct {
	ID          string        `json:"id"`
	State       State         `json:"state"`
	Pid         int           `json:"pid,omitempty"`
	Inflight    int           `json:"inflight"`
	Served      int64         `json:"served"`
	Age         time.Duration `json:"age_ns"`
	Idle        time.Duration `json:"idle_ns,omitempty"`
	InitMS      float64       `json:"init_ms,omitempty"`
	MemoryMB    int           `json:"memory_used_mb"`
	MaxMemoryMB int           `json:"max_memory_used_mb"`
	// Prewarm: started ahead of a predicted request, not yet used.
	Prewarm bool `json:"prewarm,omitempty"`
	// Node is the cluster node the instance runs on (set by the cluster's
	// merged view; empty on one node).
	Node string `json:"node,omitempty"`
}

// Instances lists the pool's live instances, oldest first.
func (p *Pool) Instances() []Info {
	p.mu.Lock()
	now, clock := time.Now(), p.o.Clock()
	out := make([]Info, 0, len(p.all))
	var rts []runtime.Instance
	for _, in := range p.all {
		if in.rt == nil && p.o.Limiter != nil && !in.slot {
			continue // not an instance yet: waiting for the Limiter's room
		}
		st := in.state
		i := Info{ID: in.id, State: st, Inflight: in.inflight, Served: in.served, Age: now.Sub(in.created), Prewarm: in.prewarm && in.served == 0}
		if in.rt != nil && st == StateIdle {
			i.Idle = clock.Sub(in.lastUsed)
		}
		out = append(out, i)
		rts = append(rts, in.rt)
	}
	p.mu.Unlock()
	// Reading memory touches cgroup files: do it outside the lock.
	for i, rt := range rts {
		if rt != nil {
			out[i].Pid = rt.Pid()
			out[i].InitMS = float64(rt.InitDuration().Microseconds()) / 1000
			out[i].MemoryMB = rt.MemoryMB()
			out[i].MaxMemoryMB = rt.MaxMemoryMB()
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Age > out[j].Age })
	return out
}

// Waiting is the number of requests waiting for an instance.
func (p *Pool) Waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiters)
}

// Idle says whether a request now would get a ready instance at once: no
// cold start and no queue. The gateway's cache serves stale_if_cold
// answers when it is false.
func (p *Pool) Idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free) > 0 && len(p.waiters) == 0 && !p.draining && !p.closed
}
