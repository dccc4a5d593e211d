package keepalive

import (
	"math"
	"time"
)

// histogram counts idle times in fixed-width bins over a range, and those
// beyond the range apart (out of bounds), as the hybrid policy's
// "range-limited histogram" does.
type histogram struct {
	bin    time.Duration
	bins   []int32
	n      int     // in range
	oob    int     // out of bounds
	sumSq  float64 // Σ bin², for the coefficient of variation
	maxBin int     // highest non-empty bin, so a tail lookup starts there
}

func newHistogram(bin, rng time.Duration) *histogram {
	return &histogram{bin: bin, bins: make([]int32, int(rng/bin))}
}

func (h *histogram) add(d time.Duration) {
	i := int(d / h.bin)
	if d < 0 {
		i = 0
	}
	if i >= len(h.bins) {
		h.oob++
		return
	}
	h.sumSq += float64(2*h.bins[i] + 1)
	h.bins[i]++
	h.n++
	h.maxBin = max(h.maxBin, i)
}

// cv is the coefficient of variation of the bin counts (population standard
// deviation over mean); 0 for an empty histogram.
func (h *histogram) cv() float64 {
	if h.n == 0 {
		return 0
	}
	k := float64(len(h.bins))
	mean := float64(h.n) / k
	v := h.sumSq/k - mean*mean
	return math.Sqrt(max(v, 0)) / mean
}

// oobShare is the share of idle times beyond the range.
func (h *histogram) oobShare() float64 {
	if h.n+h.oob == 0 {
		return 0
	}
	return float64(h.oob) / float64(h.n+h.oob)
}

// head is the lowest bin at which the in-range count reaches fraction q.
func (h *histogram) head(q float64) int {
	need := q * float64(h.n)
	c := 0
	for i, b := range h.bins[:h.maxBin+1] {
		c += int(b)
		if float64(c) >= need {
			return i
		}
	}
	return h.maxBin
}

// tail is the bin holding the q quantile, found from the top: the highest
// bin at which the count above it is still at most (1-q) of the total.
func (h *histogram) tail(q float64) int {
	above := (1 - q) * float64(h.n)
	c := 0
	for i := h.maxBin; i > 0; i-- {
		c += int(h.bins[i])
		if float64(c) > above {
			return i
		}
	}
	return 0
}
