package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/server"
)

func TestMetricsAndCostRequireToken(t *testing.T) {
	s := start(t)
	for _, path := range []string{"/metrics", "/v1/cost", "/v1/cost?function=f&since=1h"} {
		for _, tok := range []string{"", "wrong"} {
			resp, body := adminReq(t, s, "GET", path, tok)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "admin token") {
				t.Errorf("GET %s with token %q: %d %s", path, tok, resp.StatusCode, body)
			}
		}
	}
}

// lookup is the value of the one sample of family name with exactly these
// labels (a histogram's is its count), and whether there is one.
func lookup(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, m := range mfs[name].GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		if len(have) != len(want) {
			continue
		}
		match := true
		for k, v := range want {
			match = match && have[k] == v
		}
		if !match {
			continue
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

// sample is lookup's value, an error if there is no such sample.
func sample(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	v, ok := lookup(mfs, name, labels...)
	if !ok {
		t.Errorf("no sample %s%v", name, labels)
		return -1
	}
	return v
}

// scrape parses one GET /metrics.
func scrape(t *testing.T, s *server.Server) map[string]*dto.MetricFamily {
	t.Helper()
	resp, body := adminReq(t, s, "GET", "/metrics", s.Token())
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the scrape: %v\n%s", err, body)
	}
	return mfs
}

// waitFor calls poll every 10ms until it reports done or 5s have passed.
// The gateway writes a response before its bookkeeping (releasing the
// instance, recording the invocation), so what a client sees right after
// reading a response may lag it; the caller asserts on the last poll.
func waitFor(poll func() bool) {
	deadline := time.Now().Add(5 * time.Second)
	for !poll() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// Requests through the real gateway show up in a real scrape and in the
// cost report.
func TestMetricsScrapeAndCost(t *testing.T) {
	s := start(t)
	const n = 5
	for i := range n {
		resp, err := http.Get("http://" + s.GatewayAddr() + "/f/x")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Stoke-Cold") != map[bool]string{true: "true", false: "false"}[i == 0] {
			t.Fatalf("request %d: %d cold=%s", i, resp.StatusCode, resp.Header.Get("X-Stoke-Cold"))
		}
	}
	type check struct {
		name   string
		labels []string
		want   float64
	}
	checks := []check{
		{"stoke_invocations_total", []string{"function", "f", "cold", "true", "status", "200"}, 1},
		{"stoke_invocations_total", []string{"function", "f", "cold", "false", "status", "200"}, n - 1},
		{"stoke_cold_starts_total", []string{"function", "f"}, 1},
		{"stoke_init_duration_seconds", []string{"function", "f"}, 1},
		{"stoke_invocation_duration_seconds", []string{"function", "f"}, n},
		{"stoke_queue_wait_seconds", []string{"function", "f"}, n},
		{"stoke_instances", []string{"function", "f", "state", "idle"}, 1},
		{"stoke_instances", []string{"function", "f", "state", "busy"}, 0},
		// Added last for each record: once it counts all n, the billed
		// GB-s below does too.
		{"stoke_cost_dollars_total", []string{"function", "f", "kind", "request"}, n * 2e-7},
	}
	var mfs map[string]*dto.MetricFamily
	waitFor(func() bool {
		mfs = scrape(t, s)
		for _, c := range checks {
			if v, ok := lookup(mfs, c.name, c.labels...); !ok || v != c.want {
				return false
			}
		}
		return true
	})
	for _, c := range checks {
		if got := sample(t, mfs, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Known functions export 0 rather than no series.
	if v := sample(t, mfs, "stoke_throttles_total", "function", "f"); v != 0 {
		t.Errorf("throttles %v", v)
	}
	billed := sample(t, mfs, "stoke_billed_gb_seconds_total", "function", "f")
	if init := sample(t, mfs, "stoke_cost_dollars_total", "function", "f", "kind", "init"); init <= 0 || billed <= 0 {
		t.Errorf("init cost %v, billed GB-s %v: init is billed by default", init, billed)
	}

	// The report flushes the store, but the last record may not have been
	// added to it yet.
	var rep admin.CostReport
	waitFor(func() bool {
		resp, body := adminReq(t, s, "GET", "/v1/cost?since=1h", s.Token())
		rep = admin.CostReport{}
		if err := json.Unmarshal(body, &rep); err != nil || resp.StatusCode != 200 || len(rep.Functions) != 1 {
			t.Fatalf("cost: %d %v %s", resp.StatusCode, err, body)
		}
		return rep.Functions[0].Invocations >= n
	})
	f := rep.Functions[0]
	if f.Function != "f" || f.Invocations != n || f.ColdStarts != 1 || f.MemoryMB != 1769 || f.InitCost <= 0 ||
		f.Total != f.RequestCost+f.DurationCost+f.InitCost+f.KeepWarmCost || f.KeepWarmCost != 0 {
		t.Errorf("cost summary: %+v", f)
	}
	// The metrics and the SQL sums price the same invocations alike.
	if d := f.GBSeconds - billed; d > 1e-9 || d < -1e-9 {
		t.Errorf("GB-s: cost report %v, metrics %v", f.GBSeconds, billed)
	}
	if len(f.Advice) != 5 || f.Advice[1].KeepWarm != 1 || f.Advice[1].Removed != 1 || f.Advice[1].Recorded != 1 {
		t.Errorf("keep-warm advice: %+v", f.Advice)
	}
	if resp, body := adminReq(t, s, "GET", "/v1/cost?since=yesterday", s.Token()); resp.StatusCode != 400 {
		t.Errorf("bad since: %d %s", resp.StatusCode, body)
	}
}
