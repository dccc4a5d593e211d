package cache

import (
	"net/http"
	"strconv"
	"time"
)

// timing is what freshness and age are computed from (RFC 9111 §4.2).
type timing struct {
	requestTime  time.Time // when the request that got the response was sent
	responseTime time.Time // when the response was received
	date         time.Time // its Date, or responseTime without a valid one
	ageValue     time.Duration
	// lifetime is the freshness lifetime (§4.2.1); zero for a response that
	// is stale from the start.
	lifetime time.Duration
	// explicit: the lifetime came from the response (s-maxage, max-age,
	// Expires), not from default_ttl.
	explicit bool
}

// newTiming reads the response's Date, Age, Expires and directives.
func newTiming(h http.Header, status int, d directives, requestTime, responseTime time.Time, defaultTTL time.Duration) timing {
	t := timing{requestTime: requestTime, responseTime: responseTime, date: responseTime}
	if v := h["Date"]; len(v) == 1 {
		if date, err := http.ParseTime(v[0]); err == nil {
			t.date = date
		}
	}
	t.ageValue = ageValue(h)
	t.lifetime, t.explicit = lifetime(h, status, d, t.date, defaultTTL)
	return t
}

// lifetime is §4.2.1 for a shared cache: s-maxage, else max-age, else
// Expires minus Date, else the heuristic (default_ttl, §4.2.2) for status
// codes that allow one. An invalid freshness directive or Expires (e.g. "0")
// means already expired.
func lifetime(h http.Header, status int, d directives, date time.Time, defaultTTL time.Duration) (time.Duration, bool) {
	switch {
	case d.invalid:
		return 0, true
	case d.sMaxAge >= 0:
		return d.sMaxAge, true
	case d.maxAge >= 0:
		return d.maxAge, true
	}
	if v, ok := h["Expires"]; ok {
		if len(v) != 1 {
			return 0, true // §4.2.1: more than one value, consider it stale
		}
		exp, err := http.ParseTime(v[0])
		if err != nil {
			return 0, true // §5.3: an invalid date is in the past
		}
		return max(0, exp.Sub(date)), true
	}
	if heuristic(status) || d.public {
		return defaultTTL, false
	}
	return 0, false
}

// heuristic says the status code is heuristically cacheable (RFC 9110
// §15.1). 206 is, but this cache stores no partial content.
func heuristic(status int) bool {
	switch status {
	case 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// ageValue is the response's Age (§5.1): delta-seconds, saturating; an
// invalid one is ignored.
func ageValue(h http.Header) time.Duration {
	v := h["Age"]
	if len(v) == 0 {
		return 0
	}
	d, ok := deltaSeconds(v[0])
	if !ok {
		return 0
	}
	return d
}

// age is the current age of the response at now (§4.2.3).
func (t timing) age(now time.Time) time.Duration {
	apparent := max(0, t.responseTime.Sub(t.date))
	delay := t.responseTime.Sub(t.requestTime)
	corrected := t.ageValue + delay
	initial := max(apparent, corrected)
	return initial + now.Sub(t.responseTime)
}

// ttl is how much freshness is left at now: negative once stale.
func (t timing) ttl(now time.Time) time.Duration { return t.lifetime - t.age(now) }

// seconds renders a duration as whole seconds, rounding down (for Age and
// Cache-Status' ttl, both integers); negative durations round towards minus
// infinity, so a response stale by 0.5 s says -1.
func seconds(d time.Duration) string {
	s := d / time.Second
	if d < 0 && d%time.Second != 0 {
		s--
	}
	return strconv.FormatInt(int64(s), 10)
}
