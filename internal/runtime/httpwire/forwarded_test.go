package httpwire

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

func clientRequest(remote, host string, hdr ...string) *http.Request {
	r := httptest.NewRequest("GET", "/p", nil)
	r.RemoteAddr, r.Host = remote, host
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

var claims = []string{
	"X-Forwarded-For", "6.6.6.6", "X-Forwarded-Host", "evil.example", "X-Forwarded-Proto", "https",
	"X-Forwarded-Port", "1", "Forwarded", "for=6.6.6.6;proto=https",
}

func TestForwardingReplacesAClientsClaims(t *testing.T) {
	r := clientRequest("203.0.113.7:5555", "api.example.com:8080", claims...)
	NewForwarding([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}).Apply(r)
	want := map[string]string{
		"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Host": "api.example.com:8080", "X-Forwarded-Proto": "http",
		"X-Forwarded-Port": "8080", "Forwarded": `for=203.0.113.7;host="api.example.com:8080";proto=http`,
	}
	for k, v := range want {
		if got := r.Header[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestForwardingExtendsATrustedProxys(t *testing.T) {
	f := NewForwarding([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")})
	r := clientRequest("10.1.2.3:5555", "api.example.com", claims...)
	f.Apply(r)
	want := map[string]string{
		"X-Forwarded-For": "6.6.6.6, 10.1.2.3", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
		"X-Forwarded-Port": "1", "Forwarded": "for=6.6.6.6;proto=https, for=10.1.2.3;host=api.example.com;proto=http",
	}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	// A trusted proxy that set nothing: the gateway's own view fills in.
	r = clientRequest("[fd00::1]:5555", "api.example.com")
	f.Apply(r)
	if r.Header.Get("X-Forwarded-For") != "fd00::1" || r.Header.Get("X-Forwarded-Proto") != "http" ||
		r.Header.Get("Forwarded") != `for="[fd00::1]";host=api.example.com;proto=http` {
		t.Errorf("headers %v", r.Header)
	}
}

func TestForwardingTrust(t *testing.T) {
	f := NewForwarding([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	for addr, want := range map[string]bool{
		"127.0.0.1:1": true, "[::ffff:127.0.0.1]:1": true, "128.0.0.1:1": false, "[::1]:1": false, "nonsense": false, "": false,
	} {
		if got := f.Trusts(addr); got != want {
			t.Errorf("Trusts(%q) = %v", addr, got)
		}
	}
	if NewForwarding(nil).Trusts("127.0.0.1:1") {
		t.Error("no prefixes trusts someone")
	}
}

func TestForwardingPortAndProto(t *testing.T) {
	r := clientRequest("203.0.113.7:5555", "api.example.com")
	r.TLS = &tls.ConnectionState{}
	NewForwarding(nil).Apply(r)
	if r.Header.Get("X-Forwarded-Proto") != "https" || r.Header.Get("X-Forwarded-Port") != "443" {
		t.Errorf("headers %v", r.Header)
	}
	// The listener's port wins over the Host's: the client connected there.
	r = clientRequest("203.0.113.7:5555", "api.example.com:80")
	r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443}))
	NewForwarding(nil).Apply(r)
	if r.Header.Get("X-Forwarded-Port") != "8443" {
		t.Errorf("X-Forwarded-Port %q", r.Header.Get("X-Forwarded-Port"))
	}
}

// The local port's text is cached: listeners on other ports, one after
// the other, each get their own.
func TestForwardingPortOfEachListener(t *testing.T) {
	for _, port := range []int{8443, 9000, 8443, 80, 65535} {
		r := clientRequest("203.0.113.7:5555", "api.example.com")
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}))
		NewForwarding(nil).Apply(r)
		if got := r.Header.Get("X-Forwarded-Port"); got != strconv.Itoa(port) {
			t.Errorf("port %d: X-Forwarded-Port %q", port, got)
		}
	}
	// A host too long for the element's buffer, and one to quote.
	long := strings.Repeat("h", 300) + ".example"
	r := clientRequest("203.0.113.7:5555", long)
	NewForwarding(nil).Apply(r)
	if got, want := r.Header.Get("Forwarded"), "for=203.0.113.7;host="+long+";proto=http"; got != want {
		t.Errorf("Forwarded %q", got)
	}
}
