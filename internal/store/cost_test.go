package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/cost"
	"github.com/stokehq/stoke/internal/record"
)

// Usage's sums, done in SQL, equal pricing every record in Go.
func TestUsageMatchesPerRecordCosts(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	ctx := context.Background()
	p := cost.Prices{Granularity: 100 * time.Millisecond, PerGBSecond: 0.0000166667, PerRequest: 2e-7, BillInit: true}
	base := time.Unix(1700000000, 0)
	var recs []*record.Record
	add := func(r *record.Record) {
		r.RequestID = fmt.Sprintf("r%d", len(recs))
		if r.InstanceID != "" {
			r.BilledMS = record.Billed(time.Duration(r.DurationMS*float64(time.Millisecond)), p.Granularity)
		}
		recs = append(recs, r)
		s.Add(r)
	}
	// An old record outside the window, of a function with no others.
	add(&record.Record{Function: "old", Start: base.Add(-time.Hour), InstanceID: "i", DurationMS: 5, MemoryMB: 128})
	for i := range 100 {
		r := &record.Record{Function: "a", Start: base.Add(time.Duration(i) * time.Second), InstanceID: "i-a",
			DurationMS: float64(i) + 0.5, MemoryMB: 256, Status: 200}
		if i%10 == 0 {
			r.Cold, r.InitMS = true, 300.25+float64(i)
		}
		add(r)
	}
	add(&record.Record{Function: "b", Start: base, InstanceID: "i-b", DurationMS: 1234.5, MemoryMB: 1769, Cold: true, InitMS: 99.9})
	add(&record.Record{Function: "b", Start: base.Add(time.Second), InstanceID: "i-b", DurationMS: 20, MemoryMB: 3008})
	// Throttled: counted, not billed.
	add(&record.Record{Function: "b", Start: base.Add(2 * time.Second), MemoryMB: 1769, Status: 429, ErrorType: cost.ThrottledErrorType})
	flush(t, s)

	us, err := s.Usage(ctx, "", base, p.Granularity)
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 2 || us[0].Function != "a" || us[1].Function != "b" {
		t.Fatalf("usage: %+v", us)
	}
	for _, u := range us {
		var want cost.Invocation
		var n, cold, throttles int64
		for _, r := range recs {
			if r.Function != u.Function || r.Start.Before(base) {
				continue
			}
			n++
			if r.Cold {
				cold++
			}
			if r.ErrorType == cost.ThrottledErrorType {
				throttles++
			}
			c := p.Invocation(r)
			want.Request += c.Request
			want.Duration += c.Duration
			want.Init += c.Init
		}
		got := p.Summarize(u, 0, 0, 0)
		if u.Invocations != n || u.ColdStarts != cold || u.Throttles != throttles ||
			!near(got.RequestCost, want.Request) || !near(got.DurationCost, want.Duration) || !near(got.InitCost, want.Init) {
			t.Errorf("%s: usage %+v → %+v, want n=%d cold=%d throttles=%d %+v", u.Function, u, got, n, cold, throttles, want)
		}
	}
	// Durations 0.5 … 99.5 ms: nearest-rank p50 = 49.5, p95 = 94.5, p99 = 98.5.
	if a := us[0]; a.DurationP50 != 49.5 || a.DurationP95 != 94.5 || a.DurationP99 != 98.5 {
		t.Errorf("percentiles: %v %v %v", a.DurationP50, a.DurationP95, a.DurationP99)
	}
	// The init of a's first cold start (300.25 ms) bills as 400 ms at 100 ms granularity.
	if b := us[1]; b.InitMBMS != 100*1769 || b.BilledMBMS != 1300*1769+100*3008 {
		t.Errorf("b sums: init %v billed %v", b.InitMBMS, b.BilledMBMS)
	}

	// Init rounding in SQL matches record.Billed at other granularities.
	for _, g := range []time.Duration{time.Millisecond, 1500 * time.Microsecond, time.Second} {
		pg := p
		pg.Granularity = g
		var want float64
		for _, r := range recs {
			if r.Function == "a" {
				want += float64(pg.InitBilledMS(r)) * float64(r.MemoryMB)
			}
		}
		if us, err := s.Usage(ctx, "a", base, g); err != nil || len(us) != 1 || us[0].InitMBMS != want {
			t.Errorf("init at %s: %+v %v, want %v", g, us, err, want)
		}
	}

	// One function; the window excludes everything.
	if us, err := s.Usage(ctx, "b", base, p.Granularity); err != nil || len(us) != 1 || us[0].Invocations != 3 {
		t.Errorf("usage of b: %+v %v", us, err)
	}
	if us, err := s.Usage(ctx, "", base.Add(time.Hour), p.Granularity); err != nil || len(us) != 0 {
		t.Errorf("usage of an empty window: %+v %v", us, err)
	}

	arr, err := s.Arrivals(ctx, "a", base.Add(50*time.Second))
	if err != nil || len(arr) != 50 || !arr[0].Start.Equal(base.Add(50*time.Second)) || !arr[0].Cold || arr[0].InitMS != 350.25 ||
		arr[49].DurationMS != 99.5 || arr[1].Cold {
		t.Errorf("arrivals: %v %+v", err, arr[:min(2, len(arr))])
	}
	if arr, err := s.Arrivals(ctx, "b", base); err != nil || len(arr) != 2 {
		t.Errorf("arrivals of b skip the throttled one: %+v %v", arr, err)
	}
}

func near(a, b float64) bool { d := a - b; return d < 1e-15 && d > -1e-15 || d/b < 1e-9 && d/b > -1e-9 }
