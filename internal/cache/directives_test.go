package cache

import (
	"net/http"
	"testing"
	"time"
)

func TestParseDirectives(t *testing.T) {
	const s = time.Second
	cases := []struct {
		name  string
		lines []string
		check func(d directives) bool
	}{
		{"max-age", []string{"max-age=60"}, func(d directives) bool { return d.maxAge == 60*s && !d.invalid }},
		{"names are case-insensitive (§5.2)", []string{"Max-Age=60, NO-STORE"}, func(d directives) bool { return d.maxAge == 60*s && d.noStore }},
		{"quoted argument accepted (§5.2)", []string{`max-age="60"`}, func(d directives) bool { return d.maxAge == 60*s && !d.invalid }},
		{"whitespace around =", []string{"max-age = 60"}, func(d directives) bool { return d.maxAge == 60*s }},
		{"two field lines combine", []string{"public", "max-age=5"}, func(d directives) bool { return d.public && d.maxAge == 5*s }},
		{"conflicting duplicates are invalid (§4.2.1)", []string{"max-age=60, max-age=30"}, func(d directives) bool { return d.invalid && d.maxAge == 30*s }},
		{"equal duplicates are fine", []string{"max-age=60", "max-age=60"}, func(d directives) bool { return !d.invalid && d.maxAge == 60*s }},
		{"negative is invalid (§1.2.2)", []string{"max-age=-1"}, func(d directives) bool { return d.invalid }},
		{"fraction is invalid", []string{"max-age=1.5"}, func(d directives) bool { return d.invalid }},
		{"missing value is invalid", []string{"max-age"}, func(d directives) bool { return d.invalid }},
		{"huge saturates at 2^31 s (§1.2.2)", []string{"max-age=99999999999999999999"}, func(d directives) bool { return d.maxAge == maxDelta && !d.invalid }},
		{"s-maxage", []string{"s-maxage=10, max-age=60"}, func(d directives) bool { return d.sMaxAge == 10*s && d.maxAge == 60*s }},
		{"qualified no-cache is no-cache", []string{`no-cache="Set-Cookie, X-Foo"`}, func(d directives) bool { return d.noCache }},
		{"qualified private is private", []string{`private="X-Foo"`}, func(d directives) bool { return d.private }},
		{"unknown directives are ignored (§5.2.3)", []string{"foo=bar, community=\"UCI\", max-age=5"}, func(d directives) bool { return d.maxAge == 5*s && !d.invalid }},
		{"a comma inside a quoted string", []string{`foo="a, max-age=1", max-age=5`}, func(d directives) bool { return d.maxAge == 5*s && !d.invalid }},
		{"an escaped quote inside a quoted string", []string{`foo="a\", max-age=1", max-age=5`}, func(d directives) bool { return d.maxAge == 5*s }},
		{"junk after a directive drops it only", []string{"max-age=5 junk, public"}, func(d directives) bool { return d.maxAge < 0 && d.public }},
		{"unterminated quote ends parsing", []string{`public, foo="abc, max-age=5`}, func(d directives) bool { return d.public && d.maxAge < 0 }},
		{"max-stale without value: any", []string{"max-stale"}, func(d directives) bool { return d.maxStale == anyStale }},
		{"max-stale with value", []string{"max-stale=10"}, func(d directives) bool { return d.maxStale == 10*s }},
		{"min-fresh", []string{"min-fresh=20"}, func(d directives) bool { return d.minFresh == 20*s }},
		{"stale-while-revalidate and stale-if-error (RFC 5861)", []string{"max-age=1, stale-while-revalidate=59, stale-if-error=300"},
			func(d directives) bool { return d.staleWhileRevalidate == 59*s && d.staleIfError == 300*s }},
		{"a bad stale-* is ignored, not invalid", []string{"max-age=1, stale-while-revalidate=x"},
			func(d directives) bool { return d.staleWhileRevalidate < 0 && !d.invalid && d.maxAge == s }},
		{"revalidation directives", []string{"must-revalidate, proxy-revalidate"}, func(d directives) bool { return d.mustRevalidate && d.proxyRevalidate }},
		{"only-if-cached", []string{"only-if-cached"}, func(d directives) bool { return d.onlyIf }},
		{"empty items", []string{",, ,max-age=3,,"}, func(d directives) bool { return d.maxAge == 3*s }},
		{"absent", nil, func(d directives) bool {
			return d.maxAge < 0 && d.sMaxAge < 0 && d.maxStale < 0 && d.minFresh < 0 && !d.noStore && !d.invalid
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := parseDirectives(http.Header{"Cache-Control": tc.lines})
			if !tc.check(d) {
				t.Fatalf("%q parsed as %+v", tc.lines, d)
			}
		})
	}
}

func FuzzParseDirectives(f *testing.F) {
	for _, s := range []string{"max-age=60", `foo="a,\"b", s-maxage=1`, "max-stale", `x="`, "no-cache=\"a\\", ",=,", "max-age=9999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := parseDirectives(http.Header{"Cache-Control": {s}})
		for _, v := range []time.Duration{d.maxAge, d.sMaxAge, d.staleWhileRevalidate, d.staleIfError, d.minFresh} {
			if v < -1 || v > maxDelta {
				t.Fatalf("%q: a duration out of range: %+v", s, d)
			}
		}
	})
}
