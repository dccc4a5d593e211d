package httpwire

import (
	"net/http"
	"strings"
)

// HopByHop says whether a header (canonical key) is about one connection
// only (RFC 9110 §7.6.1), so a proxy does not pass it on.
func HopByHop(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return strings.HasPrefix(k, "Proxy-")
}

// Listed says whether a comma-separated header (Connection, TE) lists token.
func Listed(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if t = strings.TrimSpace(t); strings.EqualFold(t, token) {
				return true
			}
		}
	}
	return false
}

// EachHeader calls f with each request header field an instance gets: all
// of h but hop-by-hop fields (and those Connection names), Host (the
// request's Host carries it) and Content-Length (the runtime frames the
// body). The forwarded fields are passed as they are: the gateway has
// already applied the Forwarding policy to them.
func EachHeader(h http.Header, f func(k, v string)) {
	connection := h["Connection"]
	for k, vv := range h {
		if HopByHop(k) || k == "Host" || k == "Content-Length" || Listed(connection, k) {
			continue
		}
		for _, v := range vv {
			f(k, v)
		}
	}
}

// CopyResponseHeader adds an instance's response header fields to dst,
// minus hop-by-hop ones. src's slices are shared, not copied: the response
// is the caller's alone.
func CopyResponseHeader(dst, src http.Header) {
	connection := src["Connection"]
	for k, vv := range src {
		if HopByHop(k) || Listed(connection, k) {
			continue
		}
		if old := dst[k]; old != nil {
			dst[k] = append(old, vv...)
		} else {
			dst[k] = vv
		}
	}
}
