package metrics

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/stokehq/stoke/internal/cost"
	"github.com/stokehq/stoke/internal/record"
)

var prices = cost.Prices{Granularity: 100 * time.Millisecond, PerGBSecond: 0.0000166667, PerRequest: 2e-7, BillInit: true}

// scrape fetches h over HTTP and parses the text format.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// value finds the sample of family name whose labels include want; for a
// histogram it returns the sample count.
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestObserveAndScrape(t *testing.T) {
	m := New(Options{
		Prices: prices,
		Instances: func() []FunctionInstances {
			return []FunctionInstances{{Function: "f", ByState: map[string]int{"idle": 2, "busy": 1, "failed": 1}}}
		},
		Dropped: func() int64 { return 7 },
	})
	rec := func(cold bool, status int) *record.Record {
		r := &record.Record{Function: "f", InstanceID: "i", Cold: cold, Status: status, DurationMS: 150, BilledMS: 200, MemoryMB: 1024, QueueMS: 1}
		if cold {
			r.InitMS, r.QueueMS = 250, 260
		}
		return r
	}
	m.Observe(rec(true, 200))
	for range 3 {
		m.Observe(rec(false, 200))
	}
	m.Observe(rec(false, 502))
	m.Observe(&record.Record{Function: "f", Status: 429, ErrorType: cost.ThrottledErrorType, MemoryMB: 1024})
	m.Observe(&record.Record{Function: "g", InstanceID: "i", Status: 200, DurationMS: 1, BilledMS: 100, MemoryMB: 128})

	mfs := scrape(t, m.Handler())
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"stoke_invocations_total", map[string]string{"function": "f", "cold": "true", "status": "200"}, 1},
		{"stoke_invocations_total", map[string]string{"function": "f", "cold": "false", "status": "200"}, 3},
		{"stoke_invocations_total", map[string]string{"function": "f", "cold": "false", "status": "502"}, 1},
		{"stoke_invocations_total", map[string]string{"function": "f", "cold": "false", "status": "429"}, 1},
		{"stoke_invocations_total", map[string]string{"function": "g", "cold": "false", "status": "200"}, 1},
		{"stoke_cold_starts_total", map[string]string{"function": "f"}, 1},
		{"stoke_throttles_total", map[string]string{"function": "f"}, 1},
		{"stoke_init_duration_seconds", map[string]string{"function": "f"}, 1},
		{"stoke_invocation_duration_seconds", map[string]string{"function": "f"}, 5},
		{"stoke_queue_wait_seconds", map[string]string{"function": "f"}, 5},
		// 5 × 200 ms at 1 GB, plus one init of 250 ms billed as 300 ms.
		{"stoke_billed_gb_seconds_total", map[string]string{"function": "f"}, 1.3},
		{"stoke_cost_dollars_total", map[string]string{"function": "f", "kind": "request"}, 5 * 2e-7},
		{"stoke_cost_dollars_total", map[string]string{"function": "f", "kind": "duration"}, 1.0 * 0.0000166667},
		{"stoke_cost_dollars_total", map[string]string{"function": "f", "kind": "init"}, 0.3 * 0.0000166667},
		{"stoke_instances", map[string]string{"function": "f", "state": "idle"}, 2},
		{"stoke_instances", map[string]string{"function": "f", "state": "busy"}, 1},
		{"stoke_instances", map[string]string{"function": "f", "state": "starting"}, 0},
		{"stoke_instances", map[string]string{"function": "f", "state": "failed"}, 1},
		{"stoke_store_dropped_total", nil, 7},
	} {
		got, ok := value(mfs, c.name, c.labels)
		if !ok || math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := mfs["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	// The init histogram put 250 ms in the 0.25 s bucket.
	h := mfs["stoke_init_duration_seconds"].Metric[0].Histogram
	if h.GetSampleSum() != 0.25 {
		t.Errorf("init sum %v", h.GetSampleSum())
	}
}

// Two servers in one process keep separate counts.
func TestSeparateRegistries(t *testing.T) {
	a, b := New(Options{Prices: prices}), New(Options{Prices: prices})
	a.Observe(&record.Record{Function: "f", InstanceID: "i", Status: 200})
	if v, ok := value(scrape(t, b.Handler()), "stoke_invocations_total", nil); ok {
		t.Errorf("b saw a's invocation: %v", v)
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	m := New(Options{Prices: prices})
	r := &record.Record{Function: "f", InstanceID: "i", Cold: true, InitMS: 12, Status: 200, DurationMS: 3, BilledMS: 3, MemoryMB: 256}
	m.Observe(r) // first sight resolves the labels
	if n := testing.AllocsPerRun(1000, func() { m.Observe(r) }); n != 0 {
		t.Errorf("Observe allocates %v times per record", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	m := New(Options{Prices: prices})
	recs := []*record.Record{
		{Function: "hello", InstanceID: "i", Status: 200, DurationMS: 3, BilledMS: 3, MemoryMB: 256, QueueMS: 0.01},
		{Function: "hello", InstanceID: "i", Cold: true, InitMS: 40, Status: 200, DurationMS: 5, BilledMS: 5, MemoryMB: 256},
		{Function: "api", InstanceID: "i", Status: 404, DurationMS: 1, BilledMS: 1, MemoryMB: 1024},
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.Observe(recs[i%len(recs)])
			i++
		}
	})
}

// Keeping instances warm costs money while it lasts: the counter grows by
// keep_warm × GB × seconds × the provisioned-concurrency price, a changed
// setting is priced from the change on, and a removed function stops.
func TestKeepWarmCost(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prices := prices
	prices.KeepWarmPerGBSecond = 0.0000041667
	m := New(Options{Prices: prices, Now: func() time.Time { return now }})
	m.SetKeepWarm("f", 2, 1024)
	now = now.Add(time.Hour)
	mfs := scrape(t, m.Handler())
	want := 2 * 1.0 * 3600 * prices.KeepWarmPerGBSecond
	if got, ok := value(mfs, "stoke_cost_dollars_total", map[string]string{"function": "f", "kind": "keep_warm"}); !ok || math.Abs(got-want) > 1e-9 {
		t.Fatalf("after an hour of 2 × 1 GB: %v (found %v), want %v", got, ok, want)
	}
	m.SetKeepWarm("f", 1, 512) // a deploy: the first hour stays priced at 2 × 1 GB
	now = now.Add(time.Hour)
	want += 1 * 0.5 * 3600 * prices.KeepWarmPerGBSecond
	mfs = scrape(t, m.Handler())
	if got, _ := value(mfs, "stoke_cost_dollars_total", map[string]string{"function": "f", "kind": "keep_warm"}); math.Abs(got-want) > 1e-9 {
		t.Fatalf("after the change: %v, want %v", got, want)
	}
	m.SetKeepWarm("f", 0, 0) // removed
	now = now.Add(time.Hour)
	mfs = scrape(t, m.Handler())
	if got, _ := value(mfs, "stoke_cost_dollars_total", map[string]string{"function": "f", "kind": "keep_warm"}); math.Abs(got-want) > 1e-9 {
		t.Fatalf("after removal the cost still grows: %v, want %v", got, want)
	}
}
