package keepalive

import (
	"math"
	"testing"
	"time"
)

func TestParseSpec(t *testing.T) {
	for in, want := range map[string]string{"fixed:10m": "fixed:10m", "fixed:90s": "fixed:1m30s", "hybrid": "hybrid", "adaptive": "adaptive", " fixed:1h ": "fixed:1h"} {
		s, err := ParseSpec(in)
		if err != nil || s.String() != want {
			t.Errorf("ParseSpec(%q) = %v, %v; want %s", in, s, err, want)
		}
	}
	for _, bad := range []string{"", "fixed", "fixed:", "fixed:-1m", "fixed:0s", "fixed:ten", "lru", "Hybrid"} {
		if _, err := ParseSpec(bad); err == nil {
			t.Errorf("ParseSpec(%q): no error", bad)
		}
	}
}

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func min_(m float64) time.Time { return t0.Add(time.Duration(m * float64(time.Minute))) }

// invoke runs one 1-second invocation arriving at minute m.
func invoke(p Policy, m float64) {
	p.Arrived(min_(m), 0)
	p.Finished(min_(m).Add(time.Second), 0)
}

func TestHybridWindows(t *testing.T) {
	h := NewHybrid(HybridParams{})
	invoke(h, 0)
	// No idle time yet: not representative, plain 4-hour keep-alive.
	if p := h.Plan(min_(1)); p.KeepAlive != 4*time.Hour || p.Warm != 0 {
		t.Fatalf("first plan %+v, want a 4h keep-alive", p)
	}
	// Idle times of about 30 minutes: head and tail in bin 29 (idle time is
	// from the end of an execution, 1 s before the 30-minute mark).
	for i := 1; i <= 20; i++ {
		invoke(h, float64(30*i))
	}
	end := min_(600).Add(time.Second)
	p := h.Plan(end.Add(time.Minute))
	wantFrom := end.Add(time.Duration(0.9 * float64(29*time.Minute)))
	if p.Warm != 0 || p.KeepAlive != 0 || !p.NextPrewarm.Equal(wantFrom) {
		t.Fatalf("after the pattern: %+v; want unloaded with a pre-warm at %v", p, wantFrom)
	}
	f := 1.1
	wantTo := end.Add(time.Duration(f * float64(30*time.Minute)))
	if p := h.Plan(wantFrom); p.Warm != 1 || !p.Until.Equal(wantTo) {
		t.Fatalf("in the window: %+v; want 1 warm until %v", p, wantTo)
	}
	if p := h.Plan(wantTo); p.Warm != 0 {
		t.Fatalf("after the window: %+v", p)
	}
}

func TestHybridOutOfBoundsForecasts(t *testing.T) {
	h := NewHybrid(HybridParams{})
	for i := 0; i < 6; i++ {
		invoke(h, float64(i)*300) // every 5 hours: beyond the 4-hour range
	}
	end := min_(1500).Add(time.Second)
	p := h.Plan(end)
	if p.NextPrewarm.IsZero() {
		t.Fatalf("plan %+v: want a pre-warm from the forecast", p)
	}
	got := p.NextPrewarm.Sub(end)
	want := time.Duration(0.85 * float64(300*time.Minute-time.Second))
	if d := got - want; d < -time.Minute || d > time.Minute {
		t.Fatalf("pre-warm after %v; want about %v (0.85 × the 5h idle time)", got, want)
	}
}

func TestForecast(t *testing.T) {
	if f := forecast([]float64{300}); f != 300 {
		t.Fatalf("one value: %v", f)
	}
	if f := forecast([]float64{300, 300, 300, 300, 300, 300}); math.Abs(f-300) > 1 {
		t.Fatalf("constant series: %v", f)
	}
	var trend []float64
	for i := 0; i < 20; i++ {
		trend = append(trend, 100+10*float64(i))
	}
	if f := forecast(trend); math.Abs(f-300) > 5 {
		t.Fatalf("linear trend: forecast %v, want about 300", f)
	}
}

func TestReapKeepsFloorAndOldestGoFirst(t *testing.T) {
	p := Plan{KeepAlive: 10 * time.Minute, ExtraKeepAlive: time.Minute}
	idle := []time.Time{min_(0), min_(5), min_(9)}
	at := func(i int) time.Duration { return min_(11).Sub(idle[i]) }
	// At minute 11 with 3 alive: the two oldest are past the 1-minute extra
	// keep-alive; the last one standing gets the 10 minutes.
	if n := p.Reap(3, at, 3, 0); n != 2 {
		t.Fatalf("reaped %d, want 2", n)
	}
	if n := p.Reap(3, at, 3, 3); n != 0 {
		t.Fatalf("keep_warm 3: reaped %d", n)
	}
	p.Warm = 2
	if n := p.Reap(3, at, 3, 0); n != 1 {
		t.Fatalf("Warm 2: reaped %d, want 1", n)
	}
	p.Warm = 0
	if in, ok := p.Expiry(2*time.Minute, 2, 0); !ok || in != 0 {
		t.Fatalf("2 alive, idle 2m past a 1m extra keep-alive: expiry %v %v, want now", in, ok)
	}
	if in, ok := p.Expiry(2*time.Minute, 1, 0); !ok || in != 8*time.Minute {
		t.Fatalf("last one idle 2m of 10m: expiry %v %v, want in 8m", in, ok)
	}
	if _, ok := p.Expiry(2*time.Minute, 1, 1); ok {
		t.Fatal("keep_warm 1 holds the last one, yet it expires")
	}
}

func TestBudgetGreedyDual(t *testing.T) {
	b := NewBudget[string](1000)
	for range 3 {
		b.Started(300)
	}
	b.Idle("a", 300, 5) // worth keeping
	b.Idle("b", 300, 0) // least valuable
	b.Idle("c", 300, 1)
	v, fits := b.Evict(300, Inf, nil)
	if !fits || len(v) != 1 || v[0] != "b" {
		t.Fatalf("evicted %v (fits %v), want b", v, fits)
	}
	if b.Clock() != 0 || b.UsedMB() != 600 {
		t.Fatalf("clock %v used %d", b.Clock(), b.UsedMB())
	}
	b.Started(300)
	// A pre-warm worth 0.5 above the clock may not evict c (1) or a (5).
	if v, fits := b.Evict(300, b.Clock()+0.5, nil); fits || v != nil {
		t.Fatalf("pre-warm evicted %v", v)
	}
	// A request may; keep protects a (keep_warm).
	v, fits = b.Evict(600, Inf, func(k string) bool { return k == "a" })
	if fits || len(v) != 1 || v[0] != "c" || b.Clock() != 1 {
		t.Fatalf("evicted %v fits %v clock %v; want c, not fitting, clock 1", v, fits, b.Clock())
	}
}

// An adaptive function invoked every 15 minutes is learnt as periodic: the
// instance is let go and one is started just ahead of the next tick.
func TestAdaptivePeriodicPrewarms(t *testing.T) {
	a := NewAdaptive(Function{MemoryMB: 256, Init: 2 * time.Second})
	for i := 0; i < 6; i++ {
		invoke(a, float64(15*i))
	}
	end := min_(75).Add(time.Second)
	p := a.Plan(end)
	if p.KeepAlive != 0 || p.NextPrewarm.IsZero() {
		t.Fatalf("plan %+v: want unloaded with a pre-warm", p)
	}
	next := min_(90)
	if lead := next.Sub(p.NextPrewarm); lead < 2*time.Second || lead > 30*time.Second {
		t.Fatalf("pre-warm %v before the tick; want init plus a small tolerance", lead)
	}
	if p := a.Plan(next.Add(-time.Second)); p.Warm != 1 {
		t.Fatalf("just before the tick: %+v", p)
	}
}

// A pre-warm's own init, measured as it becomes ready, does not move the
// window it was started for: a faster start than expected must not leave
// the pre-warmed instance outside its window (and stopped).
func TestAdaptivePrewarmWindowStaysPut(t *testing.T) {
	a := NewAdaptive(Function{MemoryMB: 256})
	a.Started(min_(0), 3*time.Second) // a slow first start
	for i := 0; i < 5; i++ {
		invoke(a, float64(15*i))
	}
	end := min_(60).Add(time.Second)
	p := a.Plan(end)
	if p.NextPrewarm.IsZero() {
		t.Fatalf("plan %+v: want a pre-warm", p)
	}
	at := p.NextPrewarm
	a.Started(at, 10*time.Millisecond) // the pre-warm starts fast
	if p := a.Plan(at); p.Warm != 1 {
		t.Fatalf("at the pre-warm's start, after a faster init: %+v; want it held", p)
	}
}
