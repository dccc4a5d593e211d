package cache

import (
	"net/http"
	"strings"
	"time"
)

// The rules of what is stored and what may answer a request, in one place.

// bypass says why a request is not looked up at all ("" when it is): the
// Cache-Status fwd value for it. Only GET and HEAD are answered from the
// cache; range requests and preconditions other than the cache's own
// (If-Match, If-Unmodified-Since, If-Range) are the function's to evaluate;
// upgrades are not responses at all.
func bypass(r *http.Request) string {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "method"
	}
	for _, k := range [...]string{"Range", "If-Match", "If-Unmodified-Since", "If-Range", "Upgrade"} {
		if _, ok := r.Header[k]; ok {
			return "bypass"
		}
	}
	return ""
}

// unsafe says whether a method may change the resource (RFC 9110 §9.2.1),
// so a success invalidates what is stored for its URI (RFC 9111 §4.4).
func unsafe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// notStored says why a response to r may not be stored ("" when it may): RFC
// 9111 §3 for a shared cache, and three rules of Stoke's:
//
//   - Authorization (§3.5, as written): a response to a request carrying it
//     is stored only if it says a shared cache may reuse it: public,
//     s-maxage or must-revalidate. The credentials are the client's; only
//     the function can say its answer is not.
//   - Set-Cookie: RFC 9111 lets a cache store such a response, but the
//     cookie is one client's session. Stoke stores it only when the response
//     is explicitly for shared caches (public or s-maxage), and never stores
//     the Set-Cookie field itself (storedHeader drops it).
//   - A response there is nothing to reuse from (no freshness, no
//     validator, no stale-* allowance) is not stored.
func notStored(r *http.Request, req directives, status int, h http.Header, d directives, t timing) string {
	switch {
	case r.Method != http.MethodGet:
		return "method"
	case req.noStore:
		return "request-no-store"
	case status < 200 || status == http.StatusPartialContent || status == http.StatusNotModified:
		return "status"
	case d.noStore:
		return "no-store"
	case d.private:
		return "private"
	case r.Header["Authorization"] != nil && !explicitlyShared(d, true):
		return "authorization"
	case h["Set-Cookie"] != nil && !explicitlyShared(d, false):
		return "set-cookie"
	case !t.explicit && !heuristic(status) && !d.public:
		return "status"
	case h["Trailer"] != nil || isEventStream(h):
		return "streaming"
	}
	if _, star := varyNames(h); star {
		return "vary"
	}
	if t.lifetime <= 0 && h["Etag"] == nil && h["Last-Modified"] == nil && d.staleWhileRevalidate <= 0 && d.staleIfError <= 0 {
		if d.noCache {
			return "no-cache"
		}
		return "not-fresh"
	}
	return ""
}

// explicitlyShared: the response directives let a shared cache reuse it for
// other clients (§3.5); must-revalidate counts for Authorization only.
func explicitlyShared(d directives, mustRevalidate bool) bool {
	return d.public || d.sMaxAge >= 0 || mustRevalidate && d.mustRevalidate
}

func isEventStream(h http.Header) bool {
	ct := h.Get("Content-Type")
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "text/event-stream")
}

// fresh says whether e, at age with ttl left, may answer a request with
// directives req without the function (§4.2, §5.2.1).
func fresh(e *entry, req directives, age, ttl time.Duration) bool {
	switch {
	case ttl <= 0, e.cc.noCache, req.noCache:
		return false
	case req.maxAge >= 0 && age > req.maxAge:
		return false
	case req.minFresh >= 0 && ttl < req.minFresh:
		return false
	}
	return true
}

// demandsOrigin: the request asks for a response validated with the
// function (no-cache, or a max-age or min-fresh the entry fails), so no
// stale allowance of the cache's or the response's applies; only its own
// max-stale can.
func demandsOrigin(req directives, age time.Duration) bool {
	return req.noCache || req.maxAge >= 0 && age > req.maxAge || req.minFresh >= 0
}

// staleAllowed: e may be served stale at all. no-cache, must-revalidate and
// proxy-revalidate forbid it (§4.2.4).
func staleAllowed(e *entry) bool {
	return !e.cc.noCache && !e.cc.mustRevalidate && !e.cc.proxyRevalidate
}

// The allowances to serve e stale by staleness. s-maxage implies
// proxy-revalidate for a shared cache (§5.2.2.10): with it only the
// response's own stale-while-revalidate and stale-if-error apply (an origin
// sending both means both, as CDNs read it).

func whileRevalidate(e *entry, staleness time.Duration) bool {
	return staleAllowed(e) && e.cc.staleWhileRevalidate >= 0 && staleness <= e.cc.staleWhileRevalidate
}

// whileCold is stale_if_cold: for an entry that was fresh once, out of an
// out-of-band contract (the function's config), which §4.2.4 allows.
func whileCold(e *entry, staleness, staleIfCold time.Duration) bool {
	return staleAllowed(e) && e.cc.sMaxAge < 0 && e.t.lifetime > 0 && staleness <= staleIfCold
}

func maxStale(e *entry, req directives, staleness time.Duration) bool {
	return staleAllowed(e) && e.cc.sMaxAge < 0 && req.maxStale >= 0 && staleness <= req.maxStale
}

func ifError(e *entry, req directives, staleness time.Duration) bool {
	if !staleAllowed(e) {
		return false
	}
	if e.cc.staleIfError >= 0 && staleness <= e.cc.staleIfError {
		return true
	}
	return e.cc.sMaxAge < 0 && req.staleIfError >= 0 && staleness <= req.staleIfError
}

// isError is what stale-if-error answers instead of (RFC 5861 §4).
func isError(status int) bool { return status >= 500 && status <= 504 }
