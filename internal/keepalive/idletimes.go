package keepalive

import (
	"math"
	"time"
)

// idleTimes is a time-decayed histogram of idle times in log-spaced bins
// (four per doubling, from 0.1 s to about 29 h): recent behaviour counts
// most, and a day's long gaps are still remembered for hours.
type idleTimes struct {
	w, sum [idleBins]float64 // weight and weighted seconds per bin
	n      int               // samples ever
	t0     time.Time         // weights are stored as e^((t-t0)/tau), renormalised
}

const (
	idleBins   = 80
	idleMin    = 0.1 // seconds: the lower edge of bin 1
	idlePerOct = 4
	idleTau    = 4 * time.Hour // weight halves every tau·ln 2
)

// idleEdge is the upper edge of bin k, in seconds.
func idleEdge(k int) float64 { return idleEdges[k] }

// idleEdges is computed once: window reads it for every bin on every decision.
var idleEdges = func() (e [idleBins]float64) {
	for k := range e {
		e[k] = idleMin * math.Exp2(float64(k+1)/idlePerOct)
	}
	return e
}()

func (h *idleTimes) add(t time.Time, secs float64) {
	if h.t0.IsZero() {
		h.t0 = t
	}
	g := h.weight(t)
	if g > 1e100 {
		for i := range h.w {
			h.w[i] /= g
			h.sum[i] /= g
		}
		h.t0, g = t, 1
	}
	k := 0
	if secs > idleMin {
		k = min(int(math.Log2(secs/idleMin)*idlePerOct), idleBins-1)
	}
	h.w[k] += g
	h.sum[k] += g * secs
	h.n++
}

// weight is a sample's weight at t, in the stored scale.
func (h *idleTimes) weight(t time.Time) float64 {
	return math.Exp(float64(t.Sub(h.t0)) / float64(idleTau))
}

// window picks the plan for after an activity that minimises, at t, the
// expected idle seconds plus worth × expected cold starts over the samples
// and one unseen idle time longer than any (with the weight of one fresh
// sample): keep the instance for hold seconds, and — only with prewarm —
// unload it and hold one again from lo to hi (lo > hold, lo ≥ minLo). With
// lo = 0 the plan is one keep-alive of hi (hold = 0). Bounds are bin edges,
// widened by margin.
//
// The cost of a plan splits into a part that depends only on the hold and
// a part that depends only on the pre-warm window, so the best hold below
// each lo is a running minimum: the search costs no more than the pre-warm
// windows alone.
func (h *idleTimes) window(t time.Time, worth, margin float64, prewarm bool, minLo float64) (hold, lo, hi float64) {
	if h.n == 0 {
		return 0, 0, 0
	}
	unseen := h.weight(t)
	var pw, ps [idleBins + 1]float64
	for k := 0; k < idleBins; k++ {
		pw[k+1] = pw[k] + h.w[k]
		ps[k+1] = ps[k] + h.sum[k]
	}
	total := pw[idleBins] + unseen
	// later(j): the weight of idle times beyond bin j-1, the unseen included.
	later := func(j int) float64 { return pw[idleBins] - pw[j] + unseen }
	// A window over bins i..j-1 from lo to hi after the hold: arrivals there
	// are warm and find the instance idle since lo; earlier ones (past the
	// hold) and later ones are cold, and the later ones pay the whole window.
	windowCost := func(i, j int, lo, hi float64) float64 {
		warmW := pw[j] - pw[i]
		return worth*pw[i] + (ps[j] - ps[i]) - warmW*lo + later(j)*(hi-lo+worth)
	}
	// A hold over bins 0..m-1 up to h1: arrivals there are warm, the rest
	// pay the whole hold; it also turns their worth × pw[m] cold starts warm.
	holdCost := func(m int, h1 float64) float64 {
		return ps[m] + h1*(total-pw[m]) - worth*pw[m]
	}
	best := windowCost(0, 0, 0, 0)
	for j := 1; j <= idleBins; j++ {
		if h.w[j-1] == 0 {
			continue
		}
		hiJ := idleEdge(j-1) * (1 + margin)
		if c := windowCost(0, j, 0, hiJ); c < best {
			hold, lo, hi, best = 0, 0, hiJ, c
		}
	}
	if prewarm {
		// bestHold[i]: the cheapest hold ending below bin i's pre-warm edge.
		m, bestHold, bestH1 := 0, 0.0, 0.0
		for i := 1; i < idleBins; i++ {
			l := idleEdge(i-1) * (1 - margin)
			for ; m < i; m++ {
				hm := 0.0
				if m > 0 {
					if h.w[m-1] == 0 {
						continue
					}
					hm = idleEdge(m-1) * (1 + margin)
				}
				if hm >= l {
					break
				}
				if c := holdCost(m, hm); c < bestHold || m == 0 {
					bestHold, bestH1 = c, hm
				}
			}
			if l < minLo || h.w[i] == 0 {
				continue
			}
			for j := i + 1; j <= idleBins; j++ {
				if h.w[j-1] == 0 {
					continue
				}
				hiJ := idleEdge(j-1) * (1 + margin)
				if c := bestHold + windowCost(i, j, l, hiJ); c < best {
					hold, lo, hi, best = bestH1, l, hiJ, c
				}
			}
		}
	}
	// A keep-alive that covers every idle time seen says nothing about
	// longer ones: keep on past the longest for one break-even time (ski
	// rental: never more than twice what knowing the future would have cost).
	if lo == 0 && hi > 0 {
		last := idleBins - 1
		for last > 0 && h.w[last] == 0 {
			last--
		}
		if hi >= idleEdge(last) {
			hi += worth
		}
	}
	return hold, lo, hi
}
