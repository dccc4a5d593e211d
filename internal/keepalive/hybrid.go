package keepalive

import "time"

// HybridParams are the hybrid policy's parameters; zero values get the
// paper's (Shahrad et al., "Serverless in the Wild", USENIX ATC 2020, §4.2).
type HybridParams struct {
	Bin     time.Duration // histogram bin width: 1 minute
	Range   time.Duration // histogram range, and the keep-alive when not representative: 4 hours
	Head    float64       // percentile of idle times that sets the pre-warm: 0.05
	Tail    float64       // percentile that sets the end of the keep-alive: 0.99
	Margin  float64       // pre-warm earlier and keep longer by this share: 0.10
	MinCV   float64       // a histogram whose bin counts vary less than this is not representative: 2
	MaxOOB  float64       // above this share of idle times beyond the range, forecast instead: 0.5
	ARIMA   float64       // margin around the forecast idle time: 0.15 (window 0.85×–1.15×)
	History int           // idle times the forecast is fitted on: the last 64
}

func (p *HybridParams) defaults() {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	if p.Bin <= 0 {
		p.Bin = time.Minute
	}
	if p.Range <= 0 {
		p.Range = 4 * time.Hour
	}
	def(&p.Head, 0.05)
	def(&p.Tail, 0.99)
	def(&p.Margin, 0.10)
	def(&p.MinCV, 2)
	def(&p.MaxOOB, 0.5)
	def(&p.ARIMA, 0.15)
	if p.History <= 0 {
		p.History = 64
	}
}

// Hybrid is the paper's hybrid histogram policy, per function (the paper's
// unit is the app; Stoke's is the function, and the Azure sample has one
// function per app). After each execution it computes two windows from a
// histogram of the function's idle times (end of an execution to the next
// arrival; 0 when the arrival finds another request in flight):
//
//   - pattern: the pre-warm window is the Head percentile's bin (its lower
//     edge) less Margin, the keep-alive runs to the Tail percentile's bin
//     (upper edge) plus Margin. A pre-warm window of 0 keeps the instance
//     alive after the execution; otherwise the instance stops at once and one
//     is started when the pre-warm window ends, kept for the keep-alive
//     window.
//   - not representative (bin counts' coefficient of variation below MinCV,
//     including no idle time seen yet): no pre-warm, keep alive for Range.
//   - mostly out of range (more than MaxOOB of idle times beyond Range): an
//     ARIMA forecast f of the next idle time; pre-warm at (1-ARIMA)·f, keep
//     alive until (1+ARIMA)·f.
//
// Eviction under a memory budget is least recently used (the paper has no
// budget).
type Hybrid struct {
	p       HybridParams
	h       *histogram
	recent  []float64 // last idle times, minutes, for the forecast
	lastEnd time.Time // end of the latest execution
	busy    int
	dirty   bool
	prewarm time.Duration // windows from the last computation
	keep    time.Duration
}

// NewHybrid makes a hybrid policy; zero params get the paper's values.
func NewHybrid(p HybridParams) *Hybrid {
	p.defaults()
	return &Hybrid{p: p, h: newHistogram(p.Bin, p.Range), keep: p.Range}
}

func (h *Hybrid) Spec() string { return KindHybrid }

func (h *Hybrid) Arrived(t time.Time, busy int) {
	h.busy = busy + 1
	if h.lastEnd.IsZero() {
		return
	}
	it := t.Sub(h.lastEnd)
	if busy > 0 || it < 0 {
		it = 0
	}
	h.h.add(it)
	h.recent = append(h.recent, it.Minutes())
	if len(h.recent) > h.p.History {
		h.recent = h.recent[1:]
	}
	h.dirty = true
}

func (h *Hybrid) Finished(t time.Time, busy int) {
	h.busy = busy
	h.lastEnd = t
	if h.dirty {
		h.windows()
		h.dirty = false
	}
}

func (h *Hybrid) Started(time.Time, time.Duration) {}

// windows recomputes the pre-warm and keep-alive windows.
func (h *Hybrid) windows() {
	p := h.p
	switch {
	case h.h.oobShare() > p.MaxOOB:
		f := forecast(h.recent)
		pred := time.Duration(f * float64(time.Minute))
		if pred < 0 {
			pred = 0
		}
		h.prewarm = time.Duration(float64(pred) * (1 - p.ARIMA))
		h.keep = time.Duration(float64(pred)*(1+p.ARIMA)) - h.prewarm
	case h.h.cv() < p.MinCV:
		h.prewarm, h.keep = 0, p.Range
	default:
		head := time.Duration(h.h.head(p.Head)) * p.Bin
		tail := time.Duration(h.h.tail(p.Tail)+1) * p.Bin
		h.prewarm = time.Duration(float64(head) * (1 - p.Margin))
		h.keep = time.Duration(float64(tail)*(1+p.Margin)) - h.prewarm
	}
}

// Plan: with no pre-warm window, each idle instance lives for the keep-alive
// window; with one, idle instances stop at once and one instance is held from
// the end of the pre-warm window for the keep-alive window.
func (h *Hybrid) Plan(t time.Time) Plan {
	if h.prewarm <= 0 {
		return Plan{KeepAlive: h.keep, ExtraKeepAlive: h.keep}
	}
	pl := Plan{}
	if h.busy > 0 || h.lastEnd.IsZero() {
		return pl
	}
	from := h.lastEnd.Add(h.prewarm)
	to := from.Add(h.keep)
	switch {
	case t.Before(from):
		pl.Until, pl.NextPrewarm = from, from
	case t.Before(to):
		pl.Warm, pl.Until = 1, to
	}
	return pl
}
