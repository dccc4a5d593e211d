package tune

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/stokehq/stoke/internal/cost"
	"github.com/stokehq/stoke/internal/record"
)

// Sample is one measured invocation.
type Sample struct {
	// TotalMS is the request's whole time on the server: waiting for an
	// instance (for a cold one: its start, to ready) plus DurationMS.
	TotalMS float64 `json:"total_ms"`
	// DurationMS is the invocation on the instance: what Lambda bills.
	DurationMS float64 `json:"duration_ms"`
	InitMS     float64 `json:"init_ms,omitempty"` // cold: the instance's init
	Cold       bool    `json:"cold"`
}

// Size is one memory size: its samples as measured, and what Summarize
// computes from them.
type Size struct {
	MemoryMB int      `json:"memory_mb"`
	Cold     []Sample `json:"cold_samples"`
	Warm     []Sample `json:"warm_samples"`

	// Cold: a request that waited for its instance's start (Sample.TotalMS).
	ColdP50MS float64 `json:"cold_p50_ms"`
	ColdP95MS float64 `json:"cold_p95_ms"`
	InitP50MS float64 `json:"init_p50_ms"`
	// Warm: the invocation's duration (Sample.DurationMS).
	WarmP50MS float64 `json:"warm_p50_ms"`
	WarmP95MS float64 `json:"warm_p95_ms"`
	WarmP99MS float64 `json:"warm_p99_ms"`
	// BilledMS is the median warm duration rounded up to the granularity;
	// ColdBilledMS the median cold invocation's, init included when billed.
	BilledMS     int64 `json:"billed_ms"`
	ColdBilledMS int64 `json:"cold_billed_ms"`
	// CostPer1M is a million warm requests: request charge plus BilledMS at
	// this size. CostPer1MAtColdRate blends in Plan.ColdRate cold ones.
	CostPer1M           float64 `json:"cost_per_1m"`
	CostPer1MAtColdRate float64 `json:"cost_per_1m_at_cold_rate"`
	// DurationMS is the typical request at Plan.ColdRate, as the strategies
	// compare sizes: (1-r)·warm p50 + r·cold p50.
	DurationMS float64 `json:"duration_ms"`
}

// Recommendation is one strategy's choice and why, in a sentence.
type Recommendation struct {
	Strategy string  `json:"strategy"`
	Weight   float64 `json:"weight,omitempty"` // balanced only
	MemoryMB int     `json:"memory_mb"`
	Why      string  `json:"why"`
}

// Report is a finished tune: what `stoke tune` prints and --out writes, and
// what GET /v1/functions/{name}/tune/latest serves.
type Report struct {
	Function        string           `json:"function"`
	Runtime         string           `json:"runtime"`
	Version         string           `json:"version"`        // the live version the temporary ones copied
	LiveMemoryMB    int              `json:"live_memory_mb"` // as deployed
	Started         time.Time        `json:"started"`
	TookMS          float64          `json:"took_ms"`
	Plan            Plan             `json:"plan"`
	Prices          cost.Prices      `json:"prices"` // as priced: Plan.Granularity applied
	Sizes           []Size           `json:"sizes"`
	Recommendations []Recommendation `json:"recommendations"` // Plan.Strategy's first
}

// Percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of xs, which
// it sorts; 0 for none. Nearest rank reports a value that was measured, as
// `stoke cost` does.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	i := int(math.Ceil(p/100*float64(len(xs)))) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

func values(ss []Sample, f func(Sample) float64) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

func msDur(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// Summarize computes every size's statistics and costs from its samples
// with r.Prices, and the recommendations. It prices through cost.Prices, as
// `stoke cost` prices records, so the two agree.
func (r *Report) Summarize() error {
	p := r.Prices
	rate := r.Plan.ColdRate
	sort.Slice(r.Sizes, func(i, j int) bool { return r.Sizes[i].MemoryMB < r.Sizes[j].MemoryMB })
	for _, s := range r.Sizes {
		if len(s.Cold) == 0 {
			rate = 0 // no cold start measured: nothing to blend in
		}
	}
	points := make([]cost.Point, 0, len(r.Sizes))
	for i := range r.Sizes {
		s := &r.Sizes[i]
		total := values(s.Cold, func(x Sample) float64 { return x.TotalMS })
		s.ColdP50MS, s.ColdP95MS = Percentile(total, 50), Percentile(total, 95)
		s.InitP50MS = Percentile(values(s.Cold, func(x Sample) float64 { return x.InitMS }), 50)
		coldDur := Percentile(values(s.Cold, func(x Sample) float64 { return x.DurationMS }), 50)
		warm := values(s.Warm, func(x Sample) float64 { return x.DurationMS })
		s.WarmP50MS, s.WarmP95MS, s.WarmP99MS = Percentile(warm, 50), Percentile(warm, 95), Percentile(warm, 99)
		if len(s.Warm) == 0 {
			// Only cold starts measured: their own durations are the best
			// estimate of a warm one (an upper bound).
			s.WarmP50MS, s.WarmP95MS, s.WarmP99MS = coldDur, coldDur, coldDur
		}
		w := &record.Record{InstanceID: "tune", MemoryMB: s.MemoryMB, DurationMS: s.WarmP50MS,
			BilledMS: record.Billed(msDur(s.WarmP50MS), p.Granularity)}
		c := &record.Record{InstanceID: "tune", MemoryMB: s.MemoryMB, DurationMS: coldDur, Cold: true, InitMS: s.InitP50MS,
			BilledMS: record.Billed(msDur(coldDur), p.Granularity)}
		s.BilledMS = w.BilledMS
		s.ColdBilledMS = c.BilledMS + p.InitBilledMS(c)
		s.CostPer1M = 1e6 * p.Invocation(w).Total()
		s.CostPer1MAtColdRate = (1-rate)*s.CostPer1M + rate*1e6*p.Invocation(c).Total()
		s.DurationMS = (1-rate)*s.WarmP50MS + rate*s.ColdP50MS
		points = append(points, cost.Point{MemoryMB: s.MemoryMB, DurationMS: s.DurationMS, Cost: s.CostPer1MAtColdRate})
	}
	r.Recommendations = r.Recommendations[:0]
	order := []string{r.Plan.Strategy}
	for _, st := range []string{cost.StrategyCost, cost.StrategySpeed, cost.StrategyBalanced} {
		if st != r.Plan.Strategy {
			order = append(order, st)
		}
	}
	for _, st := range order {
		best, err := cost.Pick(points, st, r.Plan.Weight)
		if err != nil {
			return fmt.Errorf("recommending by %s: %w", st, err)
		}
		rec := Recommendation{Strategy: st, MemoryMB: best.MemoryMB, Why: why(st, r.Plan.Weight, best, points, rate)}
		if st == cost.StrategyBalanced {
			rec.Weight = r.Plan.Weight
		}
		r.Recommendations = append(r.Recommendations, rec)
	}
	return nil
}

// same is a == b beyond floating-point noise, as cost.Pick compares.
func same(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(math.Abs(a), math.Abs(b)) }

// why says in one sentence why strategy picked best among points.
func why(strategy string, weight float64, best cost.Point, points []cost.Point, rate float64) string {
	at := ""
	if rate > 0 {
		at = fmt.Sprintf(" at %s cold starts", pct(rate))
	}
	if len(points) == 1 {
		return fmt.Sprintf("%d MB is the only size measured: %s per 1M requests%s, %s typical.", best.MemoryMB, cost.Dollars(best.Cost), at, msStr(best.DurationMS))
	}
	switch strategy {
	case cost.StrategyCost:
		var ties []int
		var next *cost.Point
		for i, p := range points {
			switch {
			case p.MemoryMB == best.MemoryMB:
			case same(p.Cost, best.Cost):
				ties = append(ties, p.MemoryMB)
			case next == nil || p.Cost < next.Cost:
				next = &points[i]
			}
		}
		if len(ties) > 0 {
			return fmt.Sprintf("%d MB is the cheapest, %s per 1M requests%s, tied with %s, and the fastest of them (%s typical).",
				best.MemoryMB, cost.Dollars(best.Cost), at, mbList(ties), msStr(best.DurationMS))
		}
		return fmt.Sprintf("%d MB is the cheapest, %s per 1M requests%s, %s less than the next cheapest, %d MB (%s).",
			best.MemoryMB, cost.Dollars(best.Cost), at, pctLess(best.Cost, next.Cost), next.MemoryMB, cost.Dollars(next.Cost))
	case cost.StrategySpeed:
		var next *cost.Point
		for i, p := range points {
			if p.MemoryMB != best.MemoryMB && (next == nil || p.DurationMS < next.DurationMS) {
				next = &points[i]
			}
		}
		return fmt.Sprintf("%d MB is the fastest, %s typical%s, %s less than the next fastest, %d MB (%s), for %s per 1M requests.",
			best.MemoryMB, msStr(best.DurationMS), at, pctLess(best.DurationMS, next.DurationMS), next.MemoryMB, msStr(next.DurationMS), cost.Dollars(best.Cost))
	default:
		var maxCost, maxTime float64
		for _, p := range points {
			maxCost, maxTime = max(maxCost, p.Cost), max(maxTime, p.DurationMS)
		}
		return fmt.Sprintf("%d MB balances cost and speed best with weight %.2g on cost: %s per 1M requests (%s of the dearest) at %s typical (%s of the slowest)%s.",
			best.MemoryMB, weight, cost.Dollars(best.Cost), pct(ratio(best.Cost, maxCost)), msStr(best.DurationMS), pct(ratio(best.DurationMS, maxTime)), at)
	}
}

func ratio(v, m float64) float64 {
	if m == 0 {
		return 0
	}
	return v / m
}

func pct(v float64) string {
	s := fmt.Sprintf("%.1f", 100*v)
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		s = s[:len(s)-2]
	}
	return s + "%"
}

// pctLess is how much less a is than b, as a percentage of b.
func pctLess(a, b float64) string { return pct(ratio(b-a, b)) }

func msStr(ms float64) string {
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0f ms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f ms", ms)
	default:
		return fmt.Sprintf("%.2f ms", ms)
	}
}

func mbList(ms []int) string {
	s := ""
	for i, m := range ms {
		switch {
		case i == 0:
		case i == len(ms)-1:
			s += " and "
		default:
			s += ", "
		}
		s += fmt.Sprintf("%d MB", m)
	}
	return s
}
