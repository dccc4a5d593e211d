package cost

import (
	"math"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/record"
)

var lambda = Prices{
	Granularity:         time.Millisecond,
	PerGBSecond:         0.0000166667,
	PerRequest:          0.0000002,
	BillInit:            true,
	KeepWarmPerGBSecond: 0.0000041667,
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12+1e-9*math.Max(math.Abs(a), math.Abs(b)) }

// warm is a record as the gateway makes it: billed ms from the granularity.
func warm(ms float64, memoryMB int, g time.Duration) *record.Record {
	return &record.Record{InstanceID: "i-1", DurationMS: ms, MemoryMB: memoryMB,
		BilledMS: record.Billed(time.Duration(ms*float64(time.Millisecond)), g)}
}

// The seed's table (2018, 100 ms billing): warm 170/71/50/20 ms at
// 128/256/512/768 MB bill 200/100/100/100 ms and cost 2:2:4:6 units of
// "100 ms at 128 MB"; cheapest, ties broken by speed, is 256 MB, the seed's
// own choice.
func TestSeedTable(t *testing.T) {
	p := lambda
	p.Granularity = 100 * time.Millisecond
	p.PerRequest = 0 // the seed compared duration prices
	unit := GBSeconds(100, 128) * p.PerGBSecond
	mems := []int{128, 256, 512, 768}
	durs := []float64{170, 71, 50, 20}
	billed := []int64{200, 100, 100, 100}
	units := []float64{2, 2, 4, 6}
	var points []Point
	for i, m := range mems {
		r := warm(durs[i], m, p.Granularity)
		if r.BilledMS != billed[i] {
			t.Errorf("%d MB: billed %d ms, want %d", m, r.BilledMS, billed[i])
		}
		c := p.Invocation(r)
		if !near(c.Duration/unit, units[i]) || c.Init != 0 || c.Request != 0 {
			t.Errorf("%d MB: cost %v = %v units, want %v", m, c, c.Duration/unit, units[i])
		}
		// Power Tuning's pre-2021 formula gives the same ratios.
		if pt := PowerTuningCost100ms(durs[i], m); !near(pt/PowerTuningCost100ms(100, 128), units[i]) {
			t.Errorf("%d MB: Power Tuning 100 ms cost %v, want %v units", m, pt, units[i])
		}
		points = append(points, Point{MemoryMB: m, DurationMS: durs[i], Cost: c.Total()})
	}
	for _, tc := range []struct {
		strategy string
		weight   float64
		want     int
	}{
		{StrategyCost, 0, 256},
		{StrategySpeed, 0, 768},
		{StrategyBalanced, 0.5, 256},
		{StrategyBalanced, 1, 128}, // cost only: 128 and 256 tie at 2 units, the smaller wins
		{StrategyBalanced, 0, 768},
	} {
		got, err := Pick(points, tc.strategy, tc.weight)
		if err != nil || got.MemoryMB != tc.want {
			t.Errorf("%s (w=%v): picked %d MB (%v), want %d", tc.strategy, tc.weight, got.MemoryMB, err, tc.want)
		}
	}
}

func TestStrategies(t *testing.T) {
	pts := []Point{
		{MemoryMB: 512, DurationMS: 10, Cost: 4},
		{MemoryMB: 128, DurationMS: 40, Cost: 4},
		{MemoryMB: 1024, DurationMS: 10, Cost: 8},
		{MemoryMB: 256, DurationMS: 20, Cost: 4},
	}
	for _, tc := range []struct {
		strategy string
		weight   float64
		want     int
	}{
		{StrategyCost, 0, 512},  // three at 4: the fastest
		{StrategySpeed, 0, 512}, // two at 10 ms: the cheaper
		{StrategyBalanced, 0.5, 512},
	} {
		if got, err := Pick(pts, tc.strategy, tc.weight); err != nil || got.MemoryMB != tc.want {
			t.Errorf("%s: %d MB (%v), want %d", tc.strategy, got.MemoryMB, err, tc.want)
		}
	}
	// Balanced trades: w=0.9 prefers cheap-and-slow over dear-and-fast.
	pts = []Point{{MemoryMB: 128, DurationMS: 100, Cost: 1}, {MemoryMB: 2048, DurationMS: 10, Cost: 10}}
	if got, _ := Pick(pts, StrategyBalanced, 0.9); got.MemoryMB != 128 {
		t.Errorf("balanced 0.9: %d MB", got.MemoryMB)
	}
	if got, _ := Pick(pts, StrategyBalanced, 0.1); got.MemoryMB != 2048 {
		t.Errorf("balanced 0.1: %d MB", got.MemoryMB)
	}
	if _, err := Pick(pts, "fast", 0); err == nil {
		t.Error("unknown strategy accepted")
	}
	if _, err := Pick(pts, StrategyBalanced, 1.5); err == nil {
		t.Error("weight 1.5 accepted")
	}
	if _, err := Pick(nil, StrategyCost, 0); err == nil {
		t.Error("no points accepted")
	}
}

func TestInvocationGranularityAndInit(t *testing.T) {
	cold := func(g time.Duration) *record.Record {
		r := warm(47.28, 1024, g)
		r.Cold, r.InitMS = true, 340.74
		return r
	}
	for _, tc := range []struct {
		g            time.Duration
		billInit     bool
		billed, init int64
	}{
		{time.Millisecond, true, 48, 341},
		{100 * time.Millisecond, true, 100, 400},
		{time.Millisecond, false, 48, 0},
		{time.Second, true, 1000, 1000},
	} {
		p := lambda
		p.Granularity, p.BillInit = tc.g, tc.billInit
		r := cold(tc.g)
		c := p.Invocation(r)
		if r.BilledMS != tc.billed || p.InitBilledMS(r) != tc.init {
			t.Errorf("%s: billed %d/%d ms, want %d/%d", tc.g, r.BilledMS, p.InitBilledMS(r), tc.billed, tc.init)
		}
		// 1024 MB: GB-s are seconds.
		wantDur := float64(tc.billed) / 1000 * p.PerGBSecond
		wantInit := float64(tc.init) / 1000 * p.PerGBSecond
		if !near(c.Duration, wantDur) || !near(c.Init, wantInit) || !near(c.Request, 2e-7) ||
			!near(c.GBSeconds, float64(tc.billed+tc.init)/1000) || !near(c.Total(), wantDur+wantInit+2e-7) {
			t.Errorf("%s bill_init=%v: %+v", tc.g, tc.billInit, c)
		}
		// Warm: no init, whatever InitMS says.
		r.Cold = false
		if c := p.Invocation(r); c.Init != 0 {
			t.Errorf("warm invocation billed init %v", c.Init)
		}
	}
	// A throttled request never reached an instance: not on the bill.
	if c := lambda.Invocation(&record.Record{Status: 429, BilledMS: 0, MemoryMB: 128}); c.Total() != 0 {
		t.Errorf("throttled request costs %v", c)
	}
	// One Lambda reference value: 1 GB for 1 s is $0.0000166667, plus a request.
	if c := lambda.Invocation(warm(1000, 1024, time.Millisecond)); !near(c.Total(), 0.0000166667+0.0000002) {
		t.Errorf("1 GB-s: %v", c.Total())
	}
}

func TestPowerTuning(t *testing.T) {
	if got := PowerTuningCost(170.2, 128); !near(got, 171*2.1e-9) {
		t.Errorf("1 ms formula: %v", got)
	}
	if got := PowerTuningCost(20, 768); !near(got, 20*2.1e-9*6) {
		t.Errorf("1 ms formula at 768 MB: %v", got)
	}
	if got := PowerTuningCost100ms(170, 128); !near(got, 2*2.083e-7) {
		t.Errorf("100 ms formula: %v", got)
	}
	// Its constant is our price per ms at 128 MB, rounded: within 1 %.
	ours := lambda.Invocation(warm(170, 128, time.Millisecond)).Duration
	if pt := PowerTuningCost(170, 128); math.Abs(pt-ours)/ours > 0.01 {
		t.Errorf("Power Tuning %v vs ours %v", pt, ours)
	}
}

func TestKeepWarmAndSummary(t *testing.T) {
	// 2 × 1 GB for an hour: 7200 GB-s at $0.0000041667.
	if got := lambda.KeepWarm(2, 1024, time.Hour); !near(got, 7200*0.0000041667) {
		t.Errorf("keep-warm: %v", got)
	}
	if lambda.KeepWarm(0, 1024, time.Hour) != 0 || lambda.KeepWarm(2, 1024, 0) != 0 {
		t.Error("keep-warm of nothing costs something")
	}
	// Summarize from sums equals the sum of per-invocation costs.
	recs := []*record.Record{warm(10, 256, time.Millisecond), warm(99.5, 256, time.Millisecond), warm(3, 512, time.Millisecond)}
	recs[0].Cold, recs[0].InitMS = true, 250.2
	u := Usage{Function: "f", Invocations: 4, Throttles: 1}
	var want Invocation
	for _, r := range recs {
		c := lambda.Invocation(r)
		want.Request += c.Request
		want.Duration += c.Duration
		want.Init += c.Init
		want.GBSeconds += c.GBSeconds
		u.Billable++
		u.BilledMBMS += float64(r.BilledMS) * float64(r.MemoryMB)
		if r.Cold {
			u.ColdStarts++
			u.InitMBMS += float64(lambda.InitBilledMS(r)) * float64(r.MemoryMB)
		}
	}
	s := lambda.Summarize(u, 256, 1, 30*time.Minute)
	kw := lambda.KeepWarm(1, 256, 30*time.Minute)
	if !near(s.RequestCost, want.Request) || !near(s.DurationCost, want.Duration) || !near(s.InitCost, want.Init) ||
		!near(s.GBSeconds, want.GBSeconds) || !near(s.KeepWarmCost, kw) || !near(s.Total, want.Total()+kw) ||
		s.Invocations != 4 || s.ColdStarts != 1 || s.Throttles != 1 {
		t.Errorf("summary %+v, want %+v + keep-warm %v", s, want, kw)
	}
}

func TestDollars(t *testing.T) {
	for v, want := range map[float64]string{
		0: "$0", 4.1667e-7: "$0.000000417", 0.0123456: "$0.0123", 0.5: "$0.50", 12.345: "$12.35", 1234: "$1234.00",
		2e-7: "$0.000000200",
	} {
		if got := Dollars(v); got != want {
			t.Errorf("Dollars(%v) = %s, want %s", v, got, want)
		}
	}
}
