package cache

import (
	"bufio"
	"encoding/binary"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// parts is what a request's key must stand for: what the function is sent
// (scheme, Host, request-target) and the values of the key headers.
type parts struct {
	scheme, host, target string
	forwarded, headers   [][]string
}

func values(h http.Header, names []string) [][]string {
	var out [][]string
	for _, n := range names {
		var vals []string
		for _, v := range h[n] {
			vals = append(vals, strings.Trim(v, " \t"))
		}
		out = append(out, vals)
	}
	return out
}

func partsOf(r *http.Request, names []string) parts {
	p := parts{scheme: "http", host: r.Host, target: r.URL.RequestURI(),
		forwarded: values(r.Header, forwardedURI[:]), headers: values(r.Header, names)}
	if r.TLS != nil {
		p.scheme = "https"
	}
	return p
}

func equalLists(a, b [][]string) bool { return slices.EqualFunc(a, b, slices.Equal[[]string]) }

func (p parts) equal(q parts) bool {
	return p.scheme == q.scheme && p.host == q.host && p.target == q.target &&
		equalLists(p.forwarded, q.forwarded) && equalLists(p.headers, q.headers)
}

// decodeKey reads a key back into its parts: the encoding must be
// unambiguous for this to succeed on every key.
func decodeKey(t *testing.T, uri, extra string, nHeaders int) parts {
	t.Helper()
	b := []byte(uri)
	field := func() string {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			t.Fatalf("malformed key %q", uri+extra)
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s
	}
	lists := func(n int) [][]string {
		var out [][]string
		for range n {
			c, k := binary.Uvarint(b)
			if k <= 0 {
				t.Fatalf("malformed header values in %q", uri+extra)
			}
			b = b[k:]
			var vals []string
			for range c {
				vals = append(vals, field())
			}
			out = append(out, vals)
		}
		return out
	}
	p := parts{scheme: field(), host: field(), target: field()}
	p.forwarded = lists(len(forwardedURI))
	if len(b) != 0 {
		t.Fatalf("trailing bytes in URI key %q", uri)
	}
	b = []byte(extra)
	p.headers = lists(nHeaders)
	if len(b) != 0 {
		t.Fatalf("trailing bytes in header key %q", extra)
	}
	return p
}

func parseRequest(raw string) *http.Request {
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		return nil
	}
	return r
}

// FuzzKey: two requests, as net/http parses them, have the same key exactly
// when the function would be sent the same target, Host and scheme and they
// carry the same key header values; and a key decodes back to those.
func FuzzKey(f *testing.F) {
	f.Add("GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Tenant: a\r\n\r\n", "GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Tenant: a, b\r\n\r\n")
	f.Add("GET /a%2Fb HTTP/1.1\r\nHost: h\r\n\r\n", "GET /a/b HTTP/1.1\r\nHost: h\r\n\r\n")
	f.Add("GET http://other/a HTTP/1.1\r\nHost: h\r\n\r\n", "GET /a HTTP/1.1\r\nHost: other\r\n\r\n")
	f.Add("GET /a HTTP/1.1\r\nHost: h\r\nX-Tenant: a\r\nX-Tenant: b\r\n\r\n", "GET /a HTTP/1.1\r\nHost: h\r\nX-Tenant: a,b\r\n\r\n")
	f.Add("GET /a HTTP/1.1\r\nHost: h\r\nX-Tenant:\r\n\r\n", "GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
	f.Add("GET /%61 HTTP/1.1\r\nHost: h\r\n\r\n", "GET /a HTTP/1.1\r\nHost: H\r\n\r\n")
	f.Add("GET /a HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\n\r\n", "GET /a HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: http\r\n\r\n")
	names := []string{"X-Tenant", "Accept-Language"}
	f.Fuzz(func(t *testing.T, rawA, rawB string) {
		a, b := parseRequest(rawA), parseRequest(rawB)
		if a == nil || b == nil {
			return
		}
		ua, xa := uriKey(a), headerKey(a.Header, names)
		ub, xb := uriKey(b), headerKey(b.Header, names)
		pa, pb := partsOf(a, names), partsOf(b, names)
		if got := decodeKey(t, ua, xa, len(names)); !got.equal(pa) {
			t.Fatalf("key of %q decodes to %+v, want %+v", rawA, got, pa)
		}
		if same := ua == ub && xa == xb; same != pa.equal(pb) {
			t.Fatalf("keys equal %t, parts equal %t:\n%q\n%q", same, pa.equal(pb), rawA, rawB)
		}
		// Vary: an entry stored for a answers b exactly when b's values of
		// the varied headers are a's.
		e := &entry{vary: names, varyVals: varyKey(a.Header, names), shared: true}
		if e.matches(b, "") != equalLists(pa.headers, pb.headers) {
			t.Fatalf("vary match %t for headers %q vs %q", e.matches(b, ""), pa.headers, pb.headers)
		}
	})
}

func TestVaryNames(t *testing.T) {
	h := http.Header{"Vary": {"accept-encoding, Accept-Language", " Accept-Encoding ,,x-y"}}
	names, star := varyNames(h)
	if star || !slices.Equal(names, []string{"Accept-Encoding", "Accept-Language", "X-Y"}) {
		t.Fatalf("%q %t", names, star)
	}
	if _, star := varyNames(http.Header{"Vary": {"Accept, *"}}); !star {
		t.Fatal("* not seen")
	}
}
