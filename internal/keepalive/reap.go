package keepalive

import "time"

// The rule both the pool and the simulator apply to a plan, in one place.
// It takes how long instances have been idle rather than since when, so the
// simulator can feed it its own clock without converting every instant.

// Floor is how many live instances the plan and keep_warm hold at least.
func (p *Plan) Floor(keepWarm int) int { return max(keepWarm, p.Warm) }

// Limit is how long an idle instance lives when alive instances exist in
// all (itself included): the last one gets KeepAlive, the others
// ExtraKeepAlive.
func (p *Plan) Limit(alive int) time.Duration {
	if alive <= 1 {
		return p.KeepAlive
	}
	return p.ExtraKeepAlive
}

// Reap says how many idle instances to stop now: idle of them, the i-th
// (oldest first) idle for idleFor(i); alive counts every live instance
// (starting, idle or busy). The oldest idle go first, so the most recently
// used stay warm; no instance goes below the floor.
func (p *Plan) Reap(idle int, idleFor func(i int) time.Duration, alive, keepWarm int) int {
	floor := p.Floor(keepWarm)
	n := 0
	for i := 0; i < idle; i++ {
		if alive <= floor || idleFor(i) < p.Limit(alive) {
			break
		}
		n++
		alive--
	}
	return n
}

// Expiry is how long after now the oldest idle instance, idle for idleFor,
// expires, given alive live instances; false when the floor holds it.
func (p *Plan) Expiry(idleFor time.Duration, alive, keepWarm int) (time.Duration, bool) {
	if alive <= p.Floor(keepWarm) {
		return 0, false
	}
	return max(p.Limit(alive)-idleFor, 0), true
}
