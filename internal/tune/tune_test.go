package tune

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/cost"
)

var lambda = cost.Prices{
	Granularity:         time.Millisecond,
	PerGBSecond:         0.0000166667,
	PerRequest:          0.0000002,
	BillInit:            true,
	KeepWarmPerGBSecond: 0.0000041667,
}

func TestParseMemory(t *testing.T) {
	all, err := ParseMemory("all")
	if err != nil || len(all) != 46 || all[0] != 128 || all[45] != 3008 || all[1] != 192 {
		t.Errorf("all: %v %v (len %d)", all, err, len(all))
	}
	got, err := ParseMemory(" 512, 128MB,256,128 ")
	if err != nil || len(got) != 3 || got[0] != 128 || got[2] != 512 {
		t.Errorf("list: %v %v", got, err)
	}
	if _, err := ParseMemory("128,big"); err == nil {
		t.Error("a non-number was accepted")
	}
	p := Plan{MemoryMB: []int{64, 256}, Cold: 1}
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "64 MB is out of range") {
		t.Errorf("validate: %v", err)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"1%": 0.01, "0.5": 0.5, "0": 0, "100%": 1, " 2.5% ": 0.025} {
		if got, err := ParseRate(in); err != nil || math.Abs(got-want) > 1e-12 {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"101%", "-1%", "x", "1.5"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for p, want := range map[float64]float64{50: 5, 95: 10, 99: 10, 10: 1, 11: 2, 100: 10} {
		if got := Percentile(append([]float64(nil), xs...), p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("empty")
	}
}

// samples makes n samples all taking ms.
func samples(n int, cold bool, ms, initMS float64) []Sample {
	out := make([]Sample, n)
	for i := range out {
		out[i] = Sample{Cold: cold, DurationMS: ms, InitMS: initMS, TotalMS: ms + initMS}
	}
	return out
}

// The seed's table through the whole report: warm 170/71/50/20 ms at
// 128/256/512/768 MB under 100 ms billing, no request charge, no cold
// starts in the blend: cost picks 256 MB, as the seed did.
func TestSeedReport(t *testing.T) {
	p := lambda
	p.Granularity = 100 * time.Millisecond
	p.PerRequest = 0
	r := &Report{Function: "seed", Prices: p, Plan: Plan{Strategy: cost.StrategyCost, Weight: 0.5, ColdRate: 0}}
	for i, m := range []int{768, 128, 512, 256} { // Summarize sorts
		d := []float64{20, 170, 50, 71}[i]
		r.Sizes = append(r.Sizes, Size{MemoryMB: m, Cold: samples(2, true, d*2, 300), Warm: samples(5, false, d, 0)})
	}
	if err := r.Summarize(); err != nil {
		t.Fatal(err)
	}
	unit := cost.GBSeconds(100, 128) * p.PerGBSecond * 1e6
	for i, want := range []struct {
		mem    int
		billed int64
		units  float64
	}{{128, 200, 2}, {256, 100, 2}, {512, 100, 4}, {768, 100, 6}} {
		s := r.Sizes[i]
		if s.MemoryMB != want.mem || s.BilledMS != want.billed || math.Abs(s.CostPer1M/unit-want.units) > 1e-9 {
			t.Errorf("row %d: %d MB billed %d cost %v units; want %+v", i, s.MemoryMB, s.BilledMS, s.CostPer1M/unit, want)
		}
		if s.ColdP50MS < s.WarmP50MS {
			t.Errorf("%d MB: cold p50 %v < warm p50 %v", s.MemoryMB, s.ColdP50MS, s.WarmP50MS)
		}
	}
	got := map[string]int{}
	for _, rec := range r.Recommendations {
		got[rec.Strategy] = rec.MemoryMB
		if rec.Why == "" || !strings.HasSuffix(rec.Why, ".") {
			t.Errorf("%s: why %q", rec.Strategy, rec.Why)
		}
	}
	if r.Recommendations[0].Strategy != cost.StrategyCost || got["cost"] != 256 || got["speed"] != 768 || got["balanced"] != 256 {
		t.Errorf("recommendations: %+v", r.Recommendations)
	}
	if why := r.Recommendations[0].Why; !strings.Contains(why, "tied with 128 MB") || !strings.Contains(why, "fastest of them (71.0 ms") {
		t.Errorf("cost why: %q", why)
	}
}

// With a cold-start rate, the blended cost adds the cold invocations' init
// (billed) and the recommendation follows it.
func TestColdRateBlend(t *testing.T) {
	r := &Report{Function: "f", Prices: lambda, Plan: Plan{Strategy: cost.StrategySpeed, ColdRate: 0.5, Weight: 0.5, Cold: 1, Invocations: 1}}
	r.Sizes = []Size{
		{MemoryMB: 128, Cold: samples(1, true, 10, 1000), Warm: samples(1, false, 10, 0)},
		{MemoryMB: 1024, Cold: samples(1, true, 10, 10), Warm: samples(1, false, 10, 0)},
	}
	if err := r.Summarize(); err != nil {
		t.Fatal(err)
	}
	a, b := r.Sizes[0], r.Sizes[1]
	// Warm: same 10 ms, so 1024 MB costs 8× the duration part.
	wantWarm := func(m int) float64 { return 1e6 * (lambda.PerRequest + cost.GBSeconds(10, m)*lambda.PerGBSecond) }
	if math.Abs(a.CostPer1M-wantWarm(128)) > 1e-9 || math.Abs(b.CostPer1M-wantWarm(1024)) > 1e-9 {
		t.Errorf("warm costs %v %v", a.CostPer1M, b.CostPer1M)
	}
	// Cold at 128 MB: 10 ms + 1000 ms init billed.
	coldA := 1e6 * (lambda.PerRequest + cost.GBSeconds(1010, 128)*lambda.PerGBSecond)
	if want := (a.CostPer1M + coldA) / 2; math.Abs(a.CostPer1MAtColdRate-want) > 1e-9 || a.ColdBilledMS != 1010 {
		t.Errorf("blend at 128 MB: %v (billed %d), want %v", a.CostPer1MAtColdRate, a.ColdBilledMS, want)
	}
	if r.Recommendations[0].Strategy != "speed" || r.Recommendations[0].MemoryMB != 1024 ||
		!strings.Contains(r.Recommendations[0].Why, "at 50% cold starts") {
		t.Errorf("speed at 50%% cold: %+v", r.Recommendations[0])
	}
}

func sampleReport(t *testing.T) *Report {
	r := &Report{Function: "hello", Version: "3", LiveMemoryMB: 256, Started: time.Unix(1700000000, 0), Prices: lambda,
		Plan: Plan{MemoryMB: []int{128, 256, 1769}, Cold: 2, Invocations: 3, Method: "GET", Path: "/", ColdRate: 0.01, Strategy: "balanced", Weight: 0.5}}
	for _, m := range r.Plan.MemoryMB {
		d := 200 * 128 / float64(m)
		r.Sizes = append(r.Sizes, Size{MemoryMB: m, Cold: samples(2, true, d, 5*d), Warm: samples(3, false, d/4, 0)})
	}
	if err := r.Summarize(); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRenderText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, sampleReport(t)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"hello (version 3, deployed at 256 MB): 2 cold starts and 3 warm invocations per size with GET /",
		"PER 1M (1% COLD)", "*256 MB", "1769 MB", "Recommended by balanced (weight 0.5): ", "  by cost: ", "  by speed: 1769 MB. "} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

func TestRenderFiles(t *testing.T) {
	r := sampleReport(t)
	dir := t.TempDir()
	for _, name := range []string{"r.json", "r.svg", "r.png", "r.html"} {
		b, err := Render(filepath.Join(dir, name), r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		switch filepath.Ext(name) {
		case ".json":
			var back Report
			if err := json.Unmarshal(b, &back); err != nil || len(back.Sizes) != 3 || back.Sizes[2].WarmP50MS != r.Sizes[2].WarmP50MS ||
				len(back.Sizes[0].Cold) != 2 || back.Recommendations[0].Why == "" {
				t.Errorf("json round trip: %v %+v", err, back)
			}
		case ".svg":
			if !bytes.Contains(b, []byte("<svg")) || !bytes.Contains(b, []byte("cold p50")) || !bytes.Contains(b, []byte("cost per 1M requests")) {
				t.Errorf("svg: %.300s", b)
			}
		case ".png":
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil || img.Bounds().Dx() < 800 {
				t.Errorf("png: %v %v", err, img)
			}
		case ".html":
			s := string(b)
			if !strings.HasPrefix(s, "<!doctype html>") || !strings.Contains(s, "<svg") || strings.Contains(s, "<?xml") ||
				!strings.Contains(s, "<td>1769 MB</td>") || !strings.Contains(s, "Recommended by balanced") {
				t.Errorf("html: %.600s", s)
			}
		}
	}
	if _, err := Render(filepath.Join(dir, "r.pdf"), r); err == nil || !strings.Contains(err.Error(), "allowed: .json") {
		t.Errorf("pdf: %v", err)
	}
}
