package cache

import (
	"encoding/binary"
	"net/http"
	"strings"
)

// The cache key is in two parts (RFC 9111 §4.1, §2):
//   - the URI key names the target URI exactly as the function receives it:
//     scheme, Host and request-target (path and query, as forwarded), and
//     the X-Forwarded-Host/-Proto/-Port it is told. It is what purges and
//     invalidations find entries by.
//   - the variant: the values of the configured key_headers, then of the
//     request headers the stored response's Vary names. Entries for one URI
//     are told apart by these, and a request is answered only by an entry
//     whose every selecting header has exactly the request's value.
//
// Each part is a sequence of length-prefixed fields, so no two different
// requests encode alike however their bytes are chosen.

// uriKey is the URI part of r's key. Behind a trusted proxy the function
// learns the URI the client used from X-Forwarded-Host, -Proto and -Port
// (the gateway's forwarded-header policy sets them from the connection
// otherwise), so they are part of it: an app that redirects http to https
// must not have its redirect served to https clients.
func uriKey(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	b := make([]byte, 0, 64+len(r.Host)+len(r.URL.Path)+len(r.URL.RawQuery))
	b = appendField(b, scheme)
	b = appendField(b, r.Host)
	b = appendField(b, r.URL.RequestURI())
	for _, k := range forwardedURI {
		b = appendValues(b, r.Header[k])
	}
	return string(b)
}

// forwardedURI are the request fields that say which URI a client behind
// a proxy used.
var forwardedURI = [...]string{"X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port"}

// headerKey encodes the values of the named request headers: per name, its
// field lines (absent and present-but-empty differ). names are canonical.
func headerKey(h http.Header, names []string) string {
	if len(names) == 0 {
		return ""
	}
	var b []byte
	for _, n := range names {
		b = appendValues(b, h[n])
	}
	return string(b)
}

// appendValues encodes one header's field lines: their count, then each
// line. An absent header is count 0.
func appendValues(b []byte, lines []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(lines)))
	for _, l := range lines {
		b = appendField(b, strings.Trim(l, " \t"))
	}
	return b
}

func appendField(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// varyNames parses a response's Vary into canonical header names, sorted
// out of duplicates; star reports "*" (nothing can match, §4.1).
func varyNames(h http.Header) (names []string, star bool) {
	for _, line := range h["Vary"] {
		for _, f := range strings.Split(line, ",") {
			f = strings.Trim(f, " \t")
			switch {
			case f == "":
				continue
			case f == "*":
				return nil, true
			}
			c := http.CanonicalHeaderKey(f)
			dup := false
			for _, n := range names {
				dup = dup || n == c
			}
			if !dup {
				names = append(names, c)
			}
		}
	}
	return names, false
}
