package cache

import (
	"strconv"
	"time"
)

// Result is what the cache did for one request, as counted in the metrics.
type Result string

const (
	Hit         Result = "hit"         // a fresh entry answered
	Stale       Result = "stale"       // a stale entry answered (stale-while-revalidate, stale_if_cold, max-stale, stale-if-error)
	Collapsed   Result = "collapsed"   // answered from another request's forward
	Revalidated Result = "revalidated" // forwarded conditionally; a 304 refreshed the entry
	Miss        Result = "miss"        // forwarded; the function's response answered
	Bypass      Result = "bypass"      // not a request the cache answers (method, range, preconditions)
	Failed      Result = "error"       // the cache answered with an error (only-if-cached, timed out waiting)
)

// Results lists every Result, in the order the metrics show them.
var Results = []Result{Hit, Stale, Collapsed, Revalidated, Miss, Bypass, Failed}

// Name is the cache's name in Cache-Status.
const Name = "stoke"

// status builds a Cache-Status field value (RFC 9211): the cache's name,
// then hit or fwd (with fwd-status), stored, collapsed, ttl and detail.
type status struct {
	hit       bool
	fwd       string // bypass, method, uri-miss, vary-miss, request, stale
	fwdStatus int
	stored    bool
	collapsed bool
	ttl       time.Duration
	hasTTL    bool
	detail    string // a token: why it was not stored, or which stale allowance
}

func (s status) String() string {
	b := make([]byte, 0, 64)
	b = append(b, Name...)
	if s.hit {
		b = append(b, "; hit"...)
	} else if s.fwd != "" {
		b = append(b, "; fwd="...)
		b = append(b, s.fwd...)
		if s.fwdStatus != 0 {
			b = append(b, "; fwd-status="...)
			b = strconv.AppendInt(b, int64(s.fwdStatus), 10)
		}
	}
	if s.stored {
		b = append(b, "; stored"...)
	}
	if s.collapsed {
		b = append(b, "; collapsed"...)
	}
	if s.hasTTL {
		b = append(b, "; ttl="...)
		b = append(b, seconds(s.ttl)...)
	}
	if s.detail != "" {
		b = append(b, "; detail="...)
		b = append(b, s.detail...)
	}
	return string(b)
}
