package simulate

import (
	"testing"
	"time"
)

// arrivalsAt builds a day of arrivals: at each start, n requests step apart,
// each running d.
func arrivalsAt(starts []time.Duration, n int, step, d time.Duration) []Arrival {
	var out []Arrival
	for _, s := range starts {
		for i := 0; i < n; i++ {
			out = append(out, Arrival{At: s + time.Duration(i)*step, Duration: d})
		}
	}
	return out
}

// Traffic shapes adaptive is built for, each against hybrid on the same
// arrivals: adaptive must make at most the cold starts allowed, and hold no
// more idle memory than hybrid.
func TestAdaptiveLearnsTrafficShapes(t *testing.T) {
	every := func(gaps ...time.Duration) []time.Duration {
		var out []time.Duration
		for at, i := time.Minute, 0; at < 23*time.Hour; i++ {
			out = append(out, at)
			at += gaps[i%len(gaps)]
		}
		return out
	}
	cases := []struct {
		name     string
		arr      []Arrival
		mb       int // the node's mean is 512 MB
		maxCold  int
		whatFail string
	}{{
		// A big function's timer fanning out 6 requests over its minute every
		// 30 minutes, each running 30 s: not worth keeping for 30 minutes,
		// so pre-warmed — and the pre-warmed instances must be held through
		// the fan-out, not reaped when its first request arrives.
		name:     "timer fan-out",
		arr:      arrivalsAt(every(30*time.Minute), 6, 10*time.Second, 30*time.Second),
		mb:       4096,
		maxCold:  6 * 6,
		whatFail: "the pre-warmed instances did not serve the fan-out",
	}, {
		// Gaps of 3, 3, 4 minutes: three agreeing gaps happen, but the
		// function is not periodic; after a missed prediction the histogram
		// (which covers 3–4 minutes) must decide.
		name:     "jittered cadence",
		arr:      arrivalsAt(every(3*time.Minute, 3*time.Minute, 4*time.Minute, 3*time.Minute, 3*time.Minute, 3*time.Minute, 4*time.Minute), 1, 0, 4*time.Second),
		maxCold:  12,
		whatFail: "a periodic prediction that misses kept being trusted",
	}, {
		// Hourly bursts of 10 requests 6 s apart, 1 s each: keep the
		// instance a few seconds through the burst, let it go, and pre-warm
		// one ahead of the next hour — one window cannot cover both.
		name:     "hourly bursts",
		arr:      arrivalsAt(every(time.Hour+17*time.Second), 10, 6*time.Second, time.Second),
		maxCold:  12,
		whatFail: "the keep between bursts and the pre-warm before the next were not both planned",
	}}
	pols, err := ParsePolicies("hybrid,adaptive")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		f := &Function{Name: c.name, MemoryMB: max(c.mb, 512), Init: time.Second, Arrivals: c.arr}
		hy := simulateOne(f, f.Expand(nil), pols[0], 24*time.Hour, 512, nil)
		ad := simulateOne(f, f.Expand(nil), pols[1], 24*time.Hour, 512, nil)
		t.Logf("%s: %d invocations; hybrid %d cold, %.0f GB-s; adaptive %d cold (%d pre-warms), %.0f GB-s",
			c.name, ad.Invocations, hy.ColdStarts, hy.WastedMBs/1024, ad.ColdStarts, ad.Prewarms, ad.WastedMBs/1024)
		if ad.ColdStarts > c.maxCold {
			t.Errorf("%s: adaptive made %d cold starts of %d invocations, want at most %d: %s", c.name, ad.ColdStarts, ad.Invocations, c.maxCold, c.whatFail)
		}
		if ad.WastedMBs > hy.WastedMBs {
			t.Errorf("%s: adaptive held %.0f GB-s idle, more than hybrid's %.0f", c.name, ad.WastedMBs/1024, hy.WastedMBs/1024)
		}
	}
}
