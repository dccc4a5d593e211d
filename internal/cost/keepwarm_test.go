package cost

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// bursts is a synthetic trace: every 10 minutes, 3 requests arrive at once
// and run 1 s, longer than an 800 ms init (so waiting for a busy instance
// does not beat a cold start); with a 5 minute idle_timeout every instance
// has died before the next burst, so all 18 recorded requests were cold.
func bursts() []Arrival {
	var out []Arrival
	for b := range 6 {
		for range 3 {
			out = append(out, Arrival{Start: t0.Add(time.Duration(b) * 10 * time.Minute), DurationMS: 1000, InitMS: 800, Cold: true})
		}
	}
	return out
}

func TestAdviseKeepWarm(t *testing.T) {
	ad := lambda.AdviseKeepWarm(bursts(), KeepWarmChoices, 5*time.Minute, 512)
	want := map[int][2]int{0: {18, 0}, 1: {12, 6}, 2: {6, 12}, 3: {0, 18}, 5: {0, 18}} // n → cold, removed
	if len(ad) != len(KeepWarmChoices) {
		t.Fatalf("advice: %+v", ad)
	}
	for _, a := range ad {
		w := want[a.KeepWarm]
		if a.ColdStarts != w[0] || a.Removed != w[1] || a.Recorded != 18 {
			t.Errorf("keep_warm %d: %+v, want cold %d removed %d of 18", a.KeepWarm, a, w[0], w[1])
		}
		if perDay := lambda.KeepWarm(a.KeepWarm, 512, 24*time.Hour); !near(a.PerDay, perDay) {
			t.Errorf("keep_warm %d: $%v/day, want %v", a.KeepWarm, a.PerDay, perDay)
		}
	}
	// 2 × 0.5 GB × 86400 s × $0.0000041667.
	if !near(ad[2].PerDay, 2*0.5*86400*0.0000041667) {
		t.Errorf("keep_warm 2 per day: %v", ad[2].PerDay)
	}
}

func TestSimulateIdleTimeoutAndBusy(t *testing.T) {
	at := func(d time.Duration, cold bool) Arrival {
		return Arrival{Start: t0.Add(d), DurationMS: 100, InitMS: 1000, Cold: cold}
	}
	// Spaced under the idle timeout: one instance serves all, only the
	// first is cold. Spaced beyond it: every one is cold.
	var near, far []Arrival
	for i := range 5 {
		near = append(near, at(time.Duration(i)*4*time.Minute, i == 0))
		far = append(far, at(time.Duration(i)*6*time.Minute, true))
	}
	if c := count(Simulate(near, 0, 5*time.Minute)); c != 1 {
		t.Errorf("4 min apart: %d cold, want 1", c)
	}
	if c := count(Simulate(far, 0, 5*time.Minute)); c != 5 {
		t.Errorf("6 min apart: %d cold, want 5", c)
	}
	if c := count(Simulate(far, 1, 5*time.Minute)); c != 0 {
		t.Errorf("6 min apart, keep_warm 1: %d cold, want 0", c)
	}
	// An instance is busy through its init and its request. A request
	// arriving meanwhile starts a new instance (recorded warm, so with the
	// mean init), but the busy one frees first and serves it warm, as the
	// pool does; the new instance parks idle. A request during the first
	// instance's init, when nothing frees before a new init ends, is cold.
	trace := []Arrival{at(0, true), at(1050*time.Millisecond, false), at(1200*time.Millisecond, false)}
	got := Simulate(trace, 0, time.Minute)
	if !got[0] || got[1] || got[2] {
		t.Errorf("busy through init: cold = %v, want [true false false]", got)
	}
	during := []Arrival{at(0, true), at(50*time.Millisecond, false)}
	if got := Simulate(during, 0, time.Minute); !got[0] || !got[1] {
		t.Errorf("during init: cold = %v, want [true true]", got)
	}
	// Order of the input does not matter; results stay aligned with it.
	rev := []Arrival{trace[2], trace[1], trace[0]}
	if got := Simulate(rev, 0, time.Minute); got[0] || got[1] || !got[2] {
		t.Errorf("reversed input: cold = %v", got)
	}
	// Short requests: a burst queues behind one warm instance rather than
	// wait for an init, as the pool serves them.
	short := []Arrival{at(0, true), at(0, false), at(0, false)}
	if c := count(Simulate(short, 1, time.Minute)); c != 0 {
		t.Errorf("3 × 100 ms behind one warm instance with a 1 s init: %d cold, want 0", c)
	}
	if len(Simulate(nil, 3, time.Minute)) != 0 {
		t.Error("empty trace")
	}
}

func count(b []bool) (n int) {
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}
