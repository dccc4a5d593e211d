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

// window picks [lo, hi] (seconds after going idle; lo > 0 only with
// prewarm, and then at least minLo) minimising expected idle seconds plus
// worth × expected cold starts, at t, over the samples and one unseen idle
// time longer than any (with the weight of one fresh sample). lo and hi are
// bin edges (hi widened by margin).
func (h *idleTimes) window(t time.Time, worth, margin float64, prewarm bool, minLo float64) (lo, hi float64) {
	if h.n == 0 {
		return 0, 0
	}
	unseen := h.weight(t)
	var pw, ps [idleBins + 1]float64
	for k := 0; k < idleBins; k++ {
		pw[k+1] = pw[k] + h.w[k]
		ps[k+1] = ps[k] + h.sum[k]
	}
	total := pw[idleBins] + unseen
	// Window covers bins i..j-1 (arrivals there are warm).
	cost := func(i, j int, lo, hi float64) float64 {
		warmW := pw[j] - pw[i]
		waste := (ps[j] - ps[i]) - warmW*lo
		later := pw[idleBins] - pw[j] + unseen
		waste += later * (hi - lo)
		cold := pw[i] + later
		return (waste + worth*cold) / total
	}
	best := cost(0, 0, 0, 0)
	for j := 1; j <= idleBins; j++ {
		if h.w[j-1] == 0 {
			continue
		}
		hiJ := idleEdge(j-1) * (1 + margin)
		if c := cost(0, j, 0, hiJ); c < best {
			lo, hi, best = 0, hiJ, c
		}
		if !prewarm {
			continue
		}
		for i := 1; i < j; i++ {
			l := idleEdge(i-1) * (1 - margin)
			if l < minLo || h.w[i] == 0 {
				continue
			}
			if c := cost(i, j, l, hiJ); c < best {
				lo, hi, best = l, hiJ, c
			}
		}
	}
	// A window that covers every idle time seen says nothing about longer
	// ones: keep on past the longest for one break-even time (ski rental:
	// never more than twice what knowing the future would have cost).
	if lo == 0 && hi > 0 {
		last := idleBins - 1
		for last > 0 && h.w[last] == 0 {
			last--
		}
		if hi >= idleEdge(last) {
			hi += worth
		}
	}
	return lo, hi
}
