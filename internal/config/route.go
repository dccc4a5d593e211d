package config

import (
	"fmt"
	"strings"
)

// Route patterns are exact paths, or a prefix ending in "*" that matches
// every path starting with the prefix: "/hello/*" matches "/hello/" and
// everything below it (not "/hello"), "/hello*" matches "/hello",
// "/hellox" and "/hello/a".

// Match reports whether path matches the route pattern. The gateway's
// route table matches with it, so routing and validation (Overlap) agree.
func Match(pattern, path string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(path, prefix)
	}
	return path == pattern
}

// Overlap reports whether some path matches both patterns.
func Overlap(a, b string) bool {
	pa, wa := strings.CutSuffix(a, "*")
	pb, wb := strings.CutSuffix(b, "*")
	switch {
	case wa && wb:
		return strings.HasPrefix(pa, pb) || strings.HasPrefix(pb, pa)
	case wa:
		return strings.HasPrefix(b, pa)
	case wb:
		return strings.HasPrefix(a, pb)
	default:
		return a == b
	}
}

// checkRoute returns why pattern is not a valid route, or "" if it is.
func checkRoute(pattern string) string {
	const allowed = "allowed: a path starting with /, optionally ending in * for a prefix match, e.g. /hello or /hello/*"
	switch {
	case !strings.HasPrefix(pattern, "/"):
		return fmt.Sprintf("%q does not start with /; %s", pattern, allowed)
	case strings.Contains(strings.TrimSuffix(pattern, "*"), "*"):
		return fmt.Sprintf("%q has a * before the end; %s", pattern, allowed)
	case strings.ContainsAny(pattern, "?# \t\r\n"):
		return fmt.Sprintf("%q contains a space, ? or #; %s", pattern, allowed)
	case strings.HasPrefix(pattern, InvokeAPIPrefix):
		// The gateway serves Lambda's Invoke API there first; such a route
		// would never be reached.
		return fmt.Sprintf("%q is under %s, where the gateway serves Lambda's Invoke API; allowed: any other path", pattern, InvokeAPIPrefix)
	}
	return ""
}

// InvokeAPIPrefix is where the gateway listener serves Lambda's Invoke API.
const InvokeAPIPrefix = "/2015-03-31/functions/"
