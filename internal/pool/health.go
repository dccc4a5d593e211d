package pool

import (
	"fmt"
	"time"

	"github.com/stokehq/stoke/internal/runtime"
)

// health is what the pool knows of a function whose instances cannot
// start. The first failure is retried at once (a request waiting on it
// does not see it); from the second in a row the pool is failing: no start
// for a backoff that doubles from MinBackoff to MaxBackoff, then one start
// at a time, so a crash loop costs almost no CPU; and a request that finds
// no instance to serve it gets the last init error at once. An invocation
// that completes, an instance up for MinUptime, or ResetBackoff (a deploy)
// ends it.
type health struct {
	failures int         // consecutive failed starts (young exits count)
	lastErr  error       // the latest failure
	since    time.Time   // first failure of the run
	retryAt  time.Time   // while failing, no start before this
	timer    *time.Timer // starts what is due at retryAt
	// parent names the process whose end took the last failed instance
	// with it (runtime.ParentGone): its other instances are the same
	// failure, not one each.
	parent string
}

// counted reports whether err is an instance's end by a parent whose end
// is already counted.
func (h *health) counted(err error) bool {
	p := parentOf(err)
	return p != "" && h.failures > 0 && h.parent == p
}

// parentOf names the process whose end ended the instance ("" if none).
func parentOf(err error) string {
	if pg, ok := runtime.AsParentGone(err); ok {
		return pg.Parent
	}
	return ""
}

func (h *health) failing() bool { return h.failures >= 2 }

// backoff is the wait after the failures-th failed start in a row (≥ 2):
// lo at the second, doubling, at most hi.
func backoff(failures int, lo, hi time.Duration) time.Duration {
	d := lo << min(failures-2, 30)
	if d <= 0 || d > hi {
		return hi
	}
	return d
}

// startFailedLocked counts a failed start and, when the pool is failing
// with nothing left that could serve, fails the waiting requests with err.
func (p *Pool) startFailedLocked(err error) {
	h := &p.health
	now := time.Now()
	p.upLongEnoughLocked(now) // a failure after a long enough run starts a new count
	if h.failures == 0 {
		h.since = now
	}
	h.failures++
	h.lastErr = err
	if h.failing() {
		d := backoff(h.failures, p.o.MinBackoff, p.o.MaxBackoff)
		h.retryAt = now.Add(d)
		if h.timer != nil {
			h.timer.Stop()
		}
		h.timer = time.AfterFunc(d, p.retry)
		p.o.Logger.Warn("pool: instances keep failing to start; backing off", "failures", h.failures,
			"next_start_in", d, "err", err)
	}
	if h.failing() && len(p.all) == 0 {
		// As on Lambda the requests that waited on the init see its failure.
		for _, w := range p.waiters {
			w.ch <- grant{err: err}
		}
		p.waiters = nil
	}
	p.scaleLocked()
}

// retry starts what keep_warm and waiting requests want once a backoff
// has passed.
func (p *Pool) retry() {
	p.mu.Lock()
	p.scaleLocked()
	p.unlock()
}

// succeededLocked ends a run of failures when in, started since the run
// began, completed an invocation (an older instance serving says nothing
// of whether new ones start).
func (p *Pool) succeededLocked(in *instance) {
	if p.health.failures != 0 && !in.ready.Before(p.health.since) {
		p.resetHealthLocked()
	}
}

func (p *Pool) resetHealthLocked() {
	if p.health.timer != nil {
		p.health.timer.Stop()
	}
	p.health = health{}
}

// upLongEnoughLocked ends a run of failures once an instance started since
// it began has been up for MinUptime (checked whenever the failures matter: a start, a scale, a
// Health).
func (p *Pool) upLongEnoughLocked(now time.Time) {
	if p.health.failures == 0 {
		return
	}
	for _, in := range p.all {
		if in.rt != nil && !in.ready.Before(p.health.since) && now.Sub(in.ready) >= p.o.MinUptime {
			p.resetHealthLocked()
			return
		}
	}
}

// hopelessLocked is the error for a request arriving while the pool is
// failing and backing off with no instance that could serve it; nil when
// it should wait as usual.
func (p *Pool) hopelessLocked(now time.Time) error {
	h := &p.health
	if !h.failing() || !now.Before(h.retryAt) || len(p.all) > 0 {
		return nil
	}
	e := *runtime.AsError(h.lastErr)
	e.Message = fmt.Sprintf("%s (failing since %s, %d starts in a row; next start in %s)", e.Message,
		h.since.UTC().Format(time.RFC3339), h.failures, h.retryAt.Sub(now).Round(time.Second))
	return fmt.Errorf("%w: %w", ErrFailing, &e)
}

// Health is a pool's start health, for `stoke ls`, the dashboard and
// /metrics.
type Health struct {
	// Failing: the last start failed and no instance is ready.
	Failing   bool      `json:"failing"`
	Failures  int       `json:"failures,omitempty"` // consecutive failed starts
	LastError string    `json:"last_error,omitempty"`
	Since     time.Time `json:"failing_since,omitzero"`
	// RetryAt is when the next start may happen (zero: at once).
	RetryAt time.Time `json:"retry_at,omitzero"`
}

// Health reports the pool's start health.
func (p *Pool) Health() Health {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.health.failures > 0 {
		p.upLongEnoughLocked(time.Now())
	}
	h := p.health
	if h.failures == 0 {
		return Health{}
	}
	ready := false
	for _, in := range p.all {
		ready = ready || in.rt != nil
	}
	out := Health{Failing: !ready, Failures: h.failures, Since: h.since}
	if h.lastErr != nil {
		out.LastError = h.lastErr.Error()
	}
	if h.failing() && time.Now().Before(h.retryAt) {
		out.RetryAt = h.retryAt
	}
	return out
}

// ResetBackoff forgets the failures and starts what keep_warm wants now:
// a deploy (even of an unchanged function) is a reason to try again.
func (p *Pool) ResetBackoff() {
	p.mu.Lock()
	p.resetHealthLocked()
	p.scaleLocked()
	p.unlock()
}

// MarkFailing tells the pool that its instances cannot start for a reason
// found outside it (a runtime's Prepare failed): it is failing from now,
// backing off before its next start, as after two failed starts.
func (p *Pool) MarkFailing(err error) {
	p.mu.Lock()
	if p.health.failures < 1 {
		p.health.failures = 1
		p.health.since = time.Now()
	}
	p.startFailedLocked(err)
	p.unlock()
}
