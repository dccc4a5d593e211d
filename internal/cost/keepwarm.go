package cost

import (
	"slices"
	"time"
)

// Arrival is one recorded invocation, as the keep-warm simulation needs it.
type Arrival struct {
	Start      time.Time
	DurationMS float64
	InitMS     float64 // when Cold
	Cold       bool
}

// Advice is what keeping n instances warm would have done to recorded
// traffic, and what it costs.
type Advice struct {
	KeepWarm   int     `json:"keep_warm"`
	ColdStarts int     `json:"cold_starts"` // simulated with KeepWarm instances
	Recorded   int     `json:"recorded"`    // cold starts in the records
	Removed    int     `json:"removed"`     // recorded cold starts the simulation serves warm
	PerDay     float64 `json:"cost_per_day"`
}

// KeepWarmChoices are the keep_warm values `stoke cost` advises on.
var KeepWarmChoices = []int{0, 1, 2, 3, 5}

// AdviseKeepWarm replays arrivals (any order) against each keep_warm value
// in ns with Simulate, and prices each.
func (p Prices) AdviseKeepWarm(arrivals []Arrival, ns []int, idleTimeout time.Duration, memoryMB int) []Advice {
	recorded := 0
	for _, a := range arrivals {
		if a.Cold {
			recorded++
		}
	}
	out := make([]Advice, 0, len(ns))
	for _, n := range ns {
		cold := Simulate(arrivals, n, idleTimeout)
		ad := Advice{KeepWarm: n, Recorded: recorded, PerDay: p.KeepWarm(n, memoryMB, 24*time.Hour)}
		for i, a := range arrivals {
			if cold[i] {
				ad.ColdStarts++
			} else if a.Cold {
				ad.Removed++
			}
		}
		out = append(out, ad)
	}
	return out
}

// Simulate replays arrivals against a pool that keeps keepWarm instances
// alive and reports which would have been cold. The model is the pool's,
// simplified: one request per instance at a time; a request is served by
// the most recently freed idle instance; when none is free it starts a new
// instance, and is served by whichever is ready first: a busy instance that
// frees before the new one finishes its init serves it warm (the new one
// then parks idle), else it is cold (the new instance, busy for init +
// duration). Instances beyond
// keepWarm die once idle for idleTimeout; max_instances and the queue are
// not modelled. The keepWarm instances exist from the first arrival, as if
// they had been kept warm all along. A request that was warm in the records
// but is cold here gets the mean recorded init time. cold[i] is about
// arrivals[i].
func Simulate(arrivals []Arrival, keepWarm int, idleTimeout time.Duration) (cold []bool) {
	cold = make([]bool, len(arrivals))
	if len(arrivals) == 0 {
		return cold
	}
	var initSum float64
	var inits int
	for _, a := range arrivals {
		if a.Cold {
			initSum += a.InitMS
			inits++
		}
	}
	meanInit := 0.0
	if inits > 0 {
		meanInit = initSum / float64(inits)
	}
	order := make([]int, len(arrivals))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return arrivals[a].Start.Compare(arrivals[b].Start) })

	// freeAt[i] is when instance i finishes its request: it is idle from
	// then on. Keep-warm instances are idle since the first arrival.
	t0 := arrivals[order[0]].Start
	freeAt := make([]time.Time, keepWarm, keepWarm+16)
	for i := range freeAt {
		freeAt[i] = t0
	}
	for _, i := range order {
		a := arrivals[i]
		t := a.Start
		// Reap: beyond keepWarm, instances idle longer than idleTimeout
		// stop, the longest-idle first (the pool's reaper does the same).
		for len(freeAt) > keepWarm {
			oldest := -1
			for j, f := range freeAt {
				if !f.After(t) && t.Sub(f) > idleTimeout && (oldest < 0 || f.Before(freeAt[oldest])) {
					oldest = j
				}
			}
			if oldest < 0 {
				break
			}
			freeAt = slices.Delete(freeAt, oldest, oldest+1)
		}
		// The most recently freed idle instance serves (the pool's free
		// list is LIFO, which lets the others age out).
		pick := -1
		for j, f := range freeAt {
			if !f.After(t) && (pick < 0 || f.After(freeAt[pick])) {
				pick = j
			}
		}
		dur := ms(a.DurationMS)
		if pick >= 0 {
			freeAt[pick] = t.Add(dur)
			continue
		}
		init := a.InitMS
		if !a.Cold {
			init = meanInit
		}
		ready := t.Add(ms(init))
		// The first to free serves: the busy instance freeing soonest, if
		// that is before the new instance is ready.
		soonest := -1
		for j, f := range freeAt {
			if f.Before(ready) && (soonest < 0 || f.Before(freeAt[soonest])) {
				soonest = j
			}
		}
		if soonest >= 0 {
			freeAt[soonest] = freeAt[soonest].Add(dur)
			freeAt = append(freeAt, ready) // started for this request, it parks idle
			continue
		}
		cold[i] = true
		freeAt = append(freeAt, ready.Add(dur))
	}
	return cold
}

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
