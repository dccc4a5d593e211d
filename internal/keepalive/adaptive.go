package keepalive

import (
	"slices"
	"time"
)

// AdaptiveParams are the adaptive policy's parameters; zero values get the
// defaults named per field (docs/keepalive.md explains each).
type AdaptiveParams struct {
	// Worth is what making one function's traffic warm is worth, in
	// seconds of keeping an instance of the node's mean size idle: a cold
	// start of a function expected to serve n requests a day, with instances
	// r times the node's mean size, is worth keeping one of its instances
	// idle for Worth/(n·r) seconds. Default 7 days.
	Worth time.Duration
	// PerColdStart is what any one cold start is worth besides, whatever
	// the function's traffic, in the same unit. Default 3 minutes.
	PerColdStart time.Duration
	// RefInit is the init duration at which a cold start costs Worth/n; a
	// function's measured init scales it (clamped to 1/20–20×). Default 1s.
	RefInit time.Duration
	// Margin widens a window around an observed idle time. Default 0.10.
	Margin float64
	// MinPrewarmSamples: unloading and pre-warming ahead of a predicted
	// arrival needs at least this many idle times. Default 8.
	MinPrewarmSamples int
	// Periods is how many recent gaps between the starts of activity must
	// agree (within PeriodTolerance, at least 2 s) for the function to be
	// periodic (timer-driven); each periodic prediction that misses doubles
	// it for that function (up to MaxPeriods), so traffic that only looks
	// periodic for a while (gaps of 3, 3, 4, 3, 3, 4 minutes) is soon left
	// to the histograms. Default 3, 0.02 and 24.
	Periods         int
	PeriodTolerance float64
	MaxPeriods      int
	// MaxHold caps any keep-alive. Default 24h.
	MaxHold time.Duration
}

func (p *AdaptiveParams) defaults() {
	if p.Worth <= 0 {
		p.Worth = 7 * 24 * time.Hour
	}
	if p.PerColdStart <= 0 {
		p.PerColdStart = 3 * time.Minute
	}
	if p.RefInit <= 0 {
		p.RefInit = time.Second
	}
	if p.Margin <= 0 {
		p.Margin = 0.10
	}
	if p.MinPrewarmSamples <= 0 {
		p.MinPrewarmSamples = 8
	}
	if p.Periods <= 0 {
		p.Periods = 3
	}
	if p.PeriodTolerance <= 0 {
		p.PeriodTolerance = 0.02
	}
	if p.MaxPeriods < p.Periods {
		p.MaxPeriods = max(24, p.Periods)
	}
	if p.MaxHold <= 0 {
		p.MaxHold = 24 * time.Hour
	}
}

// Adaptive is Stoke's own policy. Per function (not per app) it learns, from
// what happened before each decision only:
//
//   - the idle times of its last instance (end of activity to the next
//     arrival) and, apart, those of its scale-out instances (how long the
//     instance needed at concurrency k waits until concurrency reaches k
//     again): a burst's extra instances get their own, usually much shorter,
//     keep-alive;
//   - what a cold start is worth: keeping an instance idle for Worth/n
//     (plus PerColdStart) for a function expected to serve n requests a day
//     (so every function's cold-start share counts alike, the paper's
//     per-app metric), shorter for a function bigger than the node's mean
//     and scaled by its measured init time relative to RefInit (a 10 ms Go
//     start needs less keeping than a 5 s Django one);
//   - periodicity: when the last gaps between starts of activity agree, the
//     next start is predicted and the instances the last activity needed
//     (scale-out pre-warm) are started just ahead of it, with no idle time
//     in between.
//
// Otherwise each keep-alive (and, with enough samples, each pre-warm
// window) is the one that minimises expected idle memory × time plus the
// worth of the expected cold starts, over the observed idle times and one
// unseen, longer one (so a window never trusts a few samples blindly). With
// nothing observed yet it keeps the instance for the break-even time: until
// the memory kept equals what a cold start is worth (ski rental).
//
// Under a memory budget it is Greedy-Dual: Value = requests per hour × init
// seconds / GB.
type Adaptive struct {
	p   AdaptiveParams
	mem float64 // GB
	rel float64 // memory relative to the node's mean
	// init: measured (EWMA) or expected.
	init     time.Duration
	measured bool

	first time.Time
	count int
	busy  int

	lastEnd   time.Time     // end of the last activity (busy reached 0)
	idle1     idleTimes     // the last instance's idle times
	dropAt    []time.Time   // dropAt[k]: when concurrency last fell from k+2 to k+1
	idleN     idleTimes     // scale-out instances' idle times
	starts    []time.Time   // starts of activity (arrivals finding nothing busy)
	need      int           // agreeing gaps needed to call the function periodic
	lastArr   time.Time     // the latest arrival
	span      time.Duration // the last finished activity's first to last arrival
	peak      int           // concurrency of the current activity
	lastPeak  int           // of the last finished one
	sinceCalc int           // scale-out samples since the last decideExtra
	calcN     int           // idle1.n at the last decide
	calcAt    time.Time     // and when

	// The last decision, measured from lastEnd; lead is the init it
	// started pre-warms ahead by (an init measured later, by the pre-warm
	// itself, must not move the window it is in).
	prewarm, keep time.Duration
	lead          time.Duration
	hold          time.Duration // before unloading for a pre-warm window
	extra         time.Duration
	warm          int
	periodic      bool
	nextStart     time.Time
	dirty         bool
}

// NewAdaptive makes an adaptive policy for f with the default parameters.
func NewAdaptive(f Function) *Adaptive { return NewAdaptiveWith(f, AdaptiveParams{}) }

// NewAdaptiveWith makes an adaptive policy with p (zero fields: defaults).
func NewAdaptiveWith(f Function, p AdaptiveParams) *Adaptive {
	p.defaults()
	if f.Init <= 0 {
		f.Init = time.Second
	}
	if f.MemoryMB <= 0 {
		f.MemoryMB = 128
	}
	if f.NodeMemoryMB <= 0 {
		f.NodeMemoryMB = f.MemoryMB
	}
	return &Adaptive{p: p, mem: float64(f.MemoryMB) / 1024, rel: float64(f.MemoryMB) / float64(f.NodeMemoryMB), init: f.Init, dirty: true, need: p.Periods}
}

func (a *Adaptive) Spec() string { return KindAdaptive }

func (a *Adaptive) Arrived(t time.Time, busy int) {
	a.count++
	if a.first.IsZero() {
		// Nothing seen yet: keep any instance for the break-even time.
		a.first = t
		a.keep = seconds(a.worthSeconds(t))
		a.extra = a.keep
	}
	a.busy = busy + 1
	if busy == 0 {
		if !a.lastEnd.IsZero() {
			a.idle1.add(t, t.Sub(a.lastEnd).Seconds())
			a.dirty = true
		}
		if a.periodic {
			// Judge the prediction this start was meant to meet.
			tol := a.tolerance(a.nextStart.Sub(a.starts[len(a.starts)-1]))
			if t.Before(a.nextStart.Add(-tol)) || t.After(a.nextStart.Add(tol)) {
				a.need = min(2*a.need, a.p.MaxPeriods)
			}
		}
		a.starts = append(a.starts, t)
		if len(a.starts) > a.p.MaxPeriods+1 {
			a.starts = a.starts[1:]
		}
		a.peak = 0
	} else if busy-1 < len(a.dropAt) && !a.dropAt[busy-1].IsZero() {
		// This arrival needs the (busy+1)-th instance: the one that went idle
		// when concurrency last fell below busy+1.
		a.idleN.add(t, t.Sub(a.dropAt[busy-1]).Seconds())
		a.sinceCalc++
	}
	a.peak = max(a.peak, a.busy)
	a.lastArr = t
}

func (a *Adaptive) Finished(t time.Time, busy int) {
	a.busy = busy
	if busy > 0 {
		for len(a.dropAt) < busy {
			a.dropAt = append(a.dropAt, time.Time{})
		}
		a.dropAt[busy-1] = t
		if a.sinceCalc >= 16 {
			a.decideExtra(t)
		}
		return
	}
	a.lastEnd = t
	a.lastPeak = a.peak
	if n := len(a.starts); n > 0 {
		a.span = a.lastArr.Sub(a.starts[n-1])
	}
	// Deciding costs a pass over the histogram: for a busy function, not on
	// every idle moment but after 1/16 more samples or a minute.
	if a.dirty && (a.idle1.n < 64 || a.idle1.n-a.calcN >= a.idle1.n/16 || t.Sub(a.calcAt) >= time.Minute) || a.calcAt.IsZero() {
		a.decide(t)
		a.dirty, a.calcN, a.calcAt = false, a.idle1.n, t
	}
	if a.sinceCalc >= 16 {
		a.decideExtra(t)
	}
}

func (a *Adaptive) Started(t time.Time, init time.Duration) {
	switch {
	case init <= 0:
	case !a.measured: // the first measurement replaces the guess
		a.init, a.measured = init, true
	default:
		a.init = (3*a.init + init) / 4
	}
}

// worthSeconds is how long keeping one instance idle is worth one warm
// start, at t.
func (a *Adaptive) worthSeconds(t time.Time) float64 {
	elapsed := max(t.Sub(a.first), time.Hour)
	perDay := float64(max(a.count, 1)) * float64(24*time.Hour) / float64(elapsed)
	f := min(max(float64(a.init)/float64(a.p.RefInit), 1.0/20), 20)
	return min((a.p.Worth.Seconds()/perDay+a.p.PerColdStart.Seconds())*f/a.rel, a.p.MaxHold.Seconds())
}

// decide computes the windows that follow the activity ending at t.
func (a *Adaptive) decide(t time.Time) {
	w := a.worthSeconds(t)
	a.periodic = false
	a.warm, a.hold, a.lead = 0, 0, a.init
	if period, ok := a.period(); ok {
		// Hold the instances the last activity needed from just before the
		// predicted start (Plan starts them init ahead) for as long as that
		// activity kept arriving: a timer's fan-out spread over its minute
		// finds them all warm.
		tol := a.tolerance(period)
		a.periodic = true
		a.nextStart = a.starts[len(a.starts)-1].Add(period)
		a.prewarm = max(a.nextStart.Add(-tol).Sub(t), 0)
		a.keep = max(a.nextStart.Add(tol+a.span).Sub(t)-a.prewarm, 0)
		a.warm = max(a.lastPeak, 1)
	} else {
		minLo := max(time.Minute, 2*a.init).Seconds()
		hold, lo, hi := a.idle1.window(t, w, a.p.Margin, a.idle1.n >= a.p.MinPrewarmSamples, minLo)
		a.hold = seconds(hold)
		a.prewarm = seconds(lo)
		a.keep = seconds(min(hi, a.p.MaxHold.Seconds())) - a.prewarm
		if a.idle1.n == 0 {
			a.prewarm, a.keep = 0, seconds(w)
		}
	}
	a.keep = min(a.keep, a.p.MaxHold)
	a.decideExtra(t)
}

// decideExtra computes the scale-out instances' keep-alive.
func (a *Adaptive) decideExtra(t time.Time) {
	w := a.worthSeconds(t)
	_, _, hi := a.idleN.window(t, w, a.p.Margin, false, 0)
	if a.idleN.n == 0 {
		hi = w
	}
	a.extra = seconds(min(hi, a.p.MaxHold.Seconds()))
	a.sinceCalc = 0
}

// tolerance is how far a start may fall from a period's prediction.
func (a *Adaptive) tolerance(period time.Duration) time.Duration {
	return max(2*time.Second, time.Duration(a.p.PeriodTolerance*float64(period)))
}

// period is the common gap of the last need starts of activity, if they agree.
func (a *Adaptive) period() (time.Duration, bool) {
	n := len(a.starts)
	if n < a.need+1 {
		return 0, false
	}
	gaps := make([]time.Duration, 0, a.need)
	for i := n - a.need; i < n; i++ {
		gaps = append(gaps, a.starts[i].Sub(a.starts[i-1]))
	}
	med := slices.Clone(gaps)
	slices.Sort(med)
	m := med[len(med)/2]
	tol := a.tolerance(m)
	if m < time.Minute {
		return 0, false
	}
	for _, g := range gaps {
		if g < m-tol || g > m+tol {
			return 0, false
		}
	}
	return m, true
}

// Plan: in a periodic or pre-warm window, hold the instances (through the
// activity that fills it, busy or not); otherwise the last idle instance
// lives for the keep-alive and scale-out ones for theirs.
func (a *Adaptive) Plan(t time.Time) Plan {
	value := 0.0
	if !a.first.IsZero() {
		perHour := float64(a.count) * float64(time.Hour) / float64(max(t.Sub(a.first), time.Hour))
		value = perHour * a.init.Seconds() / a.mem
	}
	pl := Plan{KeepAlive: a.keep, ExtraKeepAlive: a.extra, Value: value}
	if a.lastEnd.IsZero() || (a.prewarm <= 0 && !a.periodic) {
		return pl
	}
	to := a.lastEnd.Add(a.prewarm + a.keep)
	from := a.lastEnd.Add(max(a.prewarm-a.lead, 0)) // ready when the window opens
	if a.busy > 0 {
		if !t.Before(from) && t.Before(to) {
			pl.Warm, pl.Until = max(a.warm, 1), to
		}
		return pl
	}
	// Between the activity and the window: the short hold, then unloaded.
	pl.KeepAlive, pl.ExtraKeepAlive = a.hold, min(a.hold, a.extra)
	switch {
	case t.Before(from):
		pl.Until, pl.NextPrewarm = from, from
	case t.Before(to):
		pl.Warm, pl.Until = max(a.warm, 1), to
	}
	return pl
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
