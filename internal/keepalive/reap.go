package keepalive

import "time"

// The rule both the pool and the simulator apply to a plan, in one place.

// Floor is how many live instances the plan and keep_warm hold at least.
func (p Plan) Floor(keepWarm int) int { return max(keepWarm, p.Warm) }

// Limit is how long an idle instance lives when alive instances exist in
// all (itself included): the last one gets KeepAlive, the others
// ExtraKeepAlive.
func (p Plan) Limit(alive int) time.Duration {
	if alive <= 1 {
		return p.KeepAlive
	}
	return p.ExtraKeepAlive
}

// Reap says how many idle instances to stop at t: idle of them, the i-th
// (oldest first) idle since idleSince(i); alive counts every live instance
// (starting, idle or busy). The oldest idle go first, so the most recently
// used stay warm; no instance goes below the floor.
func (p Plan) Reap(t time.Time, idle int, idleSince func(i int) time.Time, alive, keepWarm int) int {
	floor := p.Floor(keepWarm)
	n := 0
	for i := 0; i < idle; i++ {
		if alive <= floor || t.Sub(idleSince(i)) < p.Limit(alive) {
			break
		}
		n++
		alive--
	}
	return n
}

// NextExpiry is when the oldest idle instance (idle since oldest) next
// expires, given alive live instances; zero when the floor holds it.
func (p Plan) NextExpiry(oldest time.Time, alive, keepWarm int) time.Time {
	if alive <= p.Floor(keepWarm) {
		return time.Time{}
	}
	return oldest.Add(p.Limit(alive))
}
