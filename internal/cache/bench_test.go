package cache

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// discard is a ResponseWriter that keeps nothing, so the benchmark measures
// the cache, not a recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkServeHit is the cache's own cost of a hit: lookup, freshness,
// the stored fields onto the response and Cache-Status (the HTTP server
// around it is not included; stokebench cache measures the whole hop).
func BenchmarkServeHit(b *testing.B) {
	c := New(Options{MaxBytes: 64 << 20})
	c.SetVersion("1")
	defer c.Close()
	o := newOrigin(respond(200, strings.Repeat("x", 1024), "Cache-Control: max-age=3600", "Content-Type: text/plain", "Content-Length: 1024"))
	r := httptest.NewRequest(http.MethodGet, "/page?id=1", nil)
	c.Serve(httptest.NewRecorder(), r, o)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := &discard{h: make(http.Header, 8)}
		if c.Serve(w, r, o) != Hit {
			b.Fatal("not a hit")
		}
	}
}

// BenchmarkServeHitParallel: hits from every core on one entry (the read
// lock and the SIEVE flag are shared).
func BenchmarkServeHitParallel(b *testing.B) {
	c := New(Options{MaxBytes: 64 << 20})
	c.SetVersion("1")
	defer c.Close()
	o := newOrigin(respond(200, strings.Repeat("x", 1024), "Cache-Control: max-age=3600"))
	c.Serve(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/page", nil), o)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest(http.MethodGet, "/page", nil)
		for pb.Next() {
			w := &discard{h: make(http.Header, 8)}
			c.Serve(w, r, o)
		}
	})
}
