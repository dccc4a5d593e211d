package httpwire

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
)

// Forwarding is the one forwarded-header policy: what an instance is told
// about the client through X-Forwarded-For, -Host, -Proto, -Port and
// Forwarded (RFC 7239). The gateway applies it to every request from a
// client, before any runtime sees the request.
//
// A client's own values are claims anyone can make, so they are replaced
// unless the client's address is in a trusted prefix (gateway.
// trusted_proxies: a load balancer in front of Stoke). From a trusted
// proxy, X-Forwarded-For and Forwarded get the proxy's address appended,
// and its -Host, -Proto and -Port are kept when it set them. Requests the
// Invoke API builds from an API Gateway event do not pass here: the event
// is API Gateway's word, as on Lambda.
type Forwarding struct {
	trusted []netip.Prefix
}

// NewForwarding makes the policy; trusted may be empty (trust no one).
func NewForwarding(trusted []netip.Prefix) *Forwarding {
	return &Forwarding{trusted: trusted}
}

// Trusts says whether a peer address (host:port, as in
// http.Request.RemoteAddr) is a trusted proxy.
func (f *Forwarding) Trusts(remoteAddr string) bool {
	if f == nil || len(f.trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range f.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Apply rewrites r's forwarded header fields by the policy.
func (f *Forwarding) Apply(r *http.Request) {
	h := r.Header
	if h == nil {
		h = http.Header{}
		r.Header = h
	}
	trusted := f.Trusts(r.RemoteAddr)
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = ""
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	port := localPort(r, proto)

	// The fields' values share one backing array: a request's five
	// fields cost one allocation, not five.
	vals := make([]string, 0, 5)
	field := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	var priorFor, priorForwarded []string
	if trusted {
		priorFor, priorForwarded = h["X-Forwarded-For"], h["Forwarded"]
		for _, kv := range [...][2]string{{"X-Forwarded-Host", r.Host}, {"X-Forwarded-Proto", proto}, {"X-Forwarded-Port", port}} {
			if h.Get(kv[0]) == "" && kv[1] != "" {
				field(kv[0], kv[1])
			}
		}
	} else {
		delete(h, "X-Forwarded-Host")
		field("X-Forwarded-Proto", proto)
		field("X-Forwarded-Port", port)
		if r.Host != "" {
			field("X-Forwarded-Host", r.Host)
		}
	}
	delete(h, "X-Forwarded-For")
	if ip != "" {
		field("X-Forwarded-For", joinList(priorFor, ip))
	}
	field("Forwarded", joinList(priorForwarded, forwardedElement(ip, r.Host, proto)))
}

// portString caches the last local port's text: a listener's connections
// share it, and formatting it per request allocates.
type portString struct {
	port int
	s    string
}

var lastPort atomic.Pointer[portString]

// tcpPort is a TCP address's port as text.
func tcpPort(a *net.TCPAddr) string {
	if p := lastPort.Load(); p != nil && p.port == a.Port {
		return p.s
	}
	p := &portString{a.Port, strconv.Itoa(a.Port)}
	lastPort.Store(p)
	return p.s
}

// localPort is the port the client connected to: the listener's, else the
// Host's, else the scheme's default.
func localPort(r *http.Request, proto string) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok && a.Port > 0 {
		return tcpPort(a)
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, p, err := net.SplitHostPort(a.String()); err == nil && p != "" {
			return p
		}
	}
	if _, p, err := net.SplitHostPort(r.Host); err == nil && p != "" {
		return p
	}
	if proto == "https" {
		return "443"
	}
	return "80"
}

// joinList appends v to a comma-separated list header's values.
func joinList(prior []string, v string) string {
	if len(prior) == 0 {
		return v
	}
	return strings.Join(prior, ", ") + ", " + v
}

// forwardedElement is one RFC 7239 element: for, host and proto, quoted
// where the syntax needs it (IPv6 addresses, ports). Appended in a buffer
// on the stack: the string is the one allocation.
func forwardedElement(ip, host, proto string) string {
	var buf [128]byte
	b := buf[:0]
	if ip != "" {
		b = append(b, "for="...)
		if strings.Contains(ip, ":") {
			b = append(b, `"[`...)
			b = append(b, ip...)
			b = append(b, `]"`...)
		} else {
			b = append(b, ip...)
		}
		b = append(b, ';')
	}
	if host != "" {
		b = append(b, "host="...)
		b = appendToken(b, host)
		b = append(b, ';')
	}
	b = append(b, "proto="...)
	b = append(b, proto...)
	return string(b)
}

// appendToken appends s as an RFC 7230 token if it is one, else quoted.
func appendToken(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return strconv.AppendQuote(b, s)
		}
	}
	return append(b, s...)
}
