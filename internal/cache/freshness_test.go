package cache

import (
	"net/http"
	"testing"
	"time"
)

func TestLifetime(t *testing.T) {
	date := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	httpDate := func(d time.Duration) string { return date.Add(d).Format(http.TimeFormat) }
	cases := []struct {
		name     string
		status   int
		header   http.Header
		ttl      time.Duration // default_ttl
		want     time.Duration
		explicit bool
	}{
		{"s-maxage wins in a shared cache", 200, http.Header{"Cache-Control": {"max-age=60, s-maxage=10"}, "Expires": {httpDate(time.Hour)}}, 0, 10 * time.Second, true},
		{"max-age wins over Expires", 200, http.Header{"Cache-Control": {"max-age=60"}, "Expires": {httpDate(time.Hour)}}, 0, time.Minute, true},
		{"Expires minus Date", 200, http.Header{"Expires": {httpDate(90 * time.Second)}}, 0, 90 * time.Second, true},
		{"Expires in the past", 200, http.Header{"Expires": {httpDate(-time.Hour)}}, time.Hour, 0, true},
		{"invalid Expires is in the past (§5.3)", 200, http.Header{"Expires": {"0"}}, time.Hour, 0, true},
		{"two Expires lines: stale (§4.2.1)", 200, http.Header{"Expires": {httpDate(time.Hour), httpDate(2 * time.Hour)}}, 0, 0, true},
		{"invalid max-age: stale", 200, http.Header{"Cache-Control": {"max-age=abc"}, "Expires": {httpDate(time.Hour)}}, time.Hour, 0, true},
		{"heuristic: default_ttl for a 200", 200, http.Header{}, 5 * time.Minute, 5 * time.Minute, false},
		{"heuristic: default_ttl for a 404", 404, http.Header{}, 5 * time.Minute, 5 * time.Minute, false},
		{"heuristic: default_ttl for a 308", 308, http.Header{}, 5 * time.Minute, 5 * time.Minute, false},
		{"no heuristic for a 302", 302, http.Header{}, 5 * time.Minute, 0, false},
		{"no heuristic for a 500", 500, http.Header{}, 5 * time.Minute, 0, false},
		{"public allows the heuristic for any status", 302, http.Header{"Cache-Control": {"public"}}, 5 * time.Minute, 5 * time.Minute, false},
		{"explicit freshness for a 500", 500, http.Header{"Cache-Control": {"max-age=5"}}, 0, 5 * time.Second, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, explicit := lifetime(tc.header, tc.status, parseDirectives(tc.header), date, tc.ttl)
			if got != tc.want || explicit != tc.explicit {
				t.Fatalf("lifetime %v explicit %t, want %v %t", got, explicit, tc.want, tc.explicit)
			}
		})
	}
}

// TestAge follows RFC 9111 §4.2.3's calculation with its inputs spelled out.
func TestAge(t *testing.T) {
	sent := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	received := sent.Add(2 * time.Second) // response_delay 2 s
	cases := []struct {
		name   string
		header http.Header
		at     time.Duration // after received
		want   time.Duration
	}{
		{"no Age, Date at receipt: resident time only", http.Header{"Date": {received.Format(http.TimeFormat)}}, 30 * time.Second, 32 * time.Second},
		{"Age is corrected by the delay", http.Header{"Date": {received.Format(http.TimeFormat)}, "Age": {"100"}}, 0, 102 * time.Second},
		{"apparent age when the Date is older", http.Header{"Date": {received.Add(-time.Minute).Format(http.TimeFormat)}}, 0, time.Minute},
		{"a Date from the future counts as 0", http.Header{"Date": {received.Add(time.Hour).Format(http.TimeFormat)}}, 10 * time.Second, 12 * time.Second},
		{"an invalid Age is ignored", http.Header{"Date": {received.Format(http.TimeFormat)}, "Age": {"-5"}}, 0, 2 * time.Second},
		{"no Date: the receipt time", http.Header{}, time.Second, 3 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tm := newTiming(tc.header, 200, parseDirectives(tc.header), sent, received, 0)
			if got := tm.age(received.Add(tc.at)); got != tc.want {
				t.Fatalf("age %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSecondsRendering(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0", 1500 * time.Millisecond: "1", 60 * time.Second: "60",
		-500 * time.Millisecond: "-1", -time.Second: "-1", -1500 * time.Millisecond: "-2",
	} {
		if got := seconds(d); got != want {
			t.Errorf("seconds(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestCacheStatusFormat(t *testing.T) {
	cases := map[string]status{
		"stoke; hit; ttl=42": {hit: true, ttl: 42 * time.Second, hasTTL: true},
		"stoke; fwd=uri-miss; fwd-status=200; stored; ttl=60": {fwd: "uri-miss", fwdStatus: 200, stored: true, ttl: time.Minute, hasTTL: true},
		"stoke; fwd=stale; fwd-status=304; collapsed; ttl=60": {fwd: "stale", fwdStatus: 304, collapsed: true, ttl: time.Minute, hasTTL: true},
		"stoke; hit; ttl=-31; detail=stale-if-cold":           {hit: true, ttl: -30*time.Second - time.Millisecond, hasTTL: true, detail: "stale-if-cold"},
		"stoke; fwd=method; fwd-status=201":                   {fwd: "method", fwdStatus: 201},
		"stoke; fwd=uri-miss; fwd-status=200; detail=private": {fwd: "uri-miss", fwdStatus: 200, detail: "private"},
	}
	for want, s := range cases {
		if got := s.String(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
