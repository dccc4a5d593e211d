package cache

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// directives are the Cache-Control directives a cache acts on (RFC 9111
// §5.2, RFC 5861), from a request or a response. Durations are -1 when the
// directive is absent.
type directives struct {
	maxAge, sMaxAge time.Duration
	// staleWhileRevalidate and staleIfError (RFC 5861): how long past its
	// freshness a response may still be served, in the background of a
	// refresh or when the refresh fails.
	staleWhileRevalidate, staleIfError time.Duration
	// maxStale is a request's max-stale: -1 absent, anyStale without a value.
	maxStale time.Duration
	minFresh time.Duration

	noStore, noCache, private, public       bool
	mustRevalidate, proxyRevalidate, onlyIf bool // onlyIf: only-if-cached
	// invalid: max-age or s-maxage was malformed or given twice with
	// different values.
	invalid bool
}

// anyStale is max-stale without a value: any staleness is acceptable.
const anyStale = time.Duration(math.MaxInt64)

// maxDelta is where delta-seconds saturate: RFC 9111 §1.2.2 says a value too
// large to represent is 2^31 seconds.
const maxDelta = (1 << 31) * time.Second

// parseDirectives reads every Cache-Control field line of h. Directive
// names are case-insensitive; arguments may be tokens or quoted strings
// (§5.2: recipients accept both forms). Unknown directives are ignored
// (§5.2.3). A malformed or conflicting argument of a freshness directive
// marks the whole set invalid: §4.2.1 encourages treating such a response
// as stale.
func parseDirectives(h http.Header) directives {
	d := directives{maxAge: -1, sMaxAge: -1, staleWhileRevalidate: -1, staleIfError: -1, maxStale: -1, minFresh: -1}
	for _, line := range h["Cache-Control"] {
		for len(line) > 0 {
			var name, arg string
			var hasArg bool
			name, arg, hasArg, line = nextDirective(line)
			if name == "" {
				continue
			}
			d.apply(strings.ToLower(name), arg, hasArg)
		}
	}
	return d
}

func (d *directives) apply(name, arg string, hasArg bool) {
	switch name {
	case "max-age":
		d.seconds(&d.maxAge, arg, hasArg, true)
	case "s-maxage":
		d.seconds(&d.sMaxAge, arg, hasArg, true)
	case "stale-while-revalidate":
		d.seconds(&d.staleWhileRevalidate, arg, hasArg, false)
	case "stale-if-error":
		d.seconds(&d.staleIfError, arg, hasArg, false)
	case "min-fresh":
		d.seconds(&d.minFresh, arg, hasArg, false)
	case "max-stale":
		if !hasArg {
			d.maxStale = anyStale
			return
		}
		d.seconds(&d.maxStale, arg, hasArg, false)
	case "no-store":
		d.noStore = true
	case "no-cache":
		// The qualified form (no-cache="Set-Cookie") limits the rule to
		// those fields; treating it as unqualified is stricter and safe.
		d.noCache = true
	case "private":
		// Likewise: a shared cache stores no part of a private response,
		// qualified or not (RFC 9111 §5.2.2.7 allows storing the rest).
		d.private = true
	case "public":
		d.public = true
	case "must-revalidate":
		d.mustRevalidate = true
	case "proxy-revalidate":
		d.proxyRevalidate = true
	case "only-if-cached":
		d.onlyIf = true
	}
}

// seconds sets *dst from a delta-seconds argument (RFC 9111 §1.2.2: digits
// only); of two occurrences the smaller wins. A bad or conflicting value of
// a freshness directive (fresh) makes the set invalid, so the response is
// stale; any other bad directive is ignored, which for the stale-* ones
// means no stale serving.
func (d *directives) seconds(dst *time.Duration, arg string, hasArg, fresh bool) {
	v, ok := deltaSeconds(arg)
	if !hasArg || !ok {
		d.invalid = d.invalid || fresh
		return
	}
	if *dst >= 0 && *dst != v {
		d.invalid = d.invalid || fresh
	}
	if *dst < 0 || v < *dst {
		*dst = v
	}
}

func deltaSeconds(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > int64(maxDelta/time.Second) {
		return maxDelta, true // all digits, so only too large
	}
	return time.Duration(n) * time.Second, true
}

// nextDirective splits the first directive off a Cache-Control field value:
// cache-directive = token [ "=" ( token / quoted-string ) ], separated by
// commas with optional whitespace. It never fails: junk up to the next comma
// outside a quoted string is skipped.
func nextDirective(s string) (name, arg string, hasArg bool, rest string) {
	s = strings.TrimLeft(s, " \t,")
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	name, s = s[:i], s[i:]
	s = strings.TrimLeft(s, " \t")
	if strings.HasPrefix(s, "=") {
		s = strings.TrimLeft(s[1:], " \t")
		hasArg = true
		if strings.HasPrefix(s, `"`) {
			var ok bool
			arg, s, ok = quoted(s)
			if !ok {
				return "", "", false, "" // unterminated: nothing after it is trustworthy
			}
		} else {
			j := 0
			for j < len(s) && isTokenChar(s[j]) {
				j++
			}
			arg, s = s[:j], s[j:]
		}
	}
	s = strings.TrimLeft(s, " \t")
	if s != "" && s[0] != ',' {
		// Not a well-formed directive: drop it and whatever follows up to
		// the next separator.
		name, arg, hasArg = "", "", false
		s = skipItem(s)
	}
	return name, arg, hasArg, s
}

// quoted reads a quoted-string at the start of s, unescaping quoted-pairs.
func quoted(s string) (val, rest string, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], true
		case '\\':
			if i+1 == len(s) {
				return "", "", false
			}
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

// skipItem drops s up to the next comma outside a quoted string.
func skipItem(s string) string {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if inQuote {
				i++
			}
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				return s[i:]
			}
		}
	}
	return ""
}

// isTokenChar is tchar (RFC 9110 §5.6.2).
func isTokenChar(c byte) bool { return httpguts.IsTokenRune(rune(c)) }
