package main_test

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/tune"
)

// `stoke tune` against the real binary, the real examples/hello and a real
// server: the numbers make sense, the live version is left alone, and the
// temporary versions are gone after success, failure and Ctrl-C.
func TestTuneEndToEnd(t *testing.T) {
	stokeBin, hello := build(t)
	dir := t.TempDir()
	gw, adm := freeAddr(t), freeAddr(t)
	cfg := writeConfig(t, dir, gw, adm, hello, "hi")
	// A function whose command does not exist: it deploys (keep_warm 0
	// starts nothing) and fails at its first start.
	appendConfig(t, cfg, "  broken:\n    runtime: http\n    command: [./no-such-command]\n    routes: [/broken]\n")
	s := startStoke(t, stokeBin, cfg, gw)
	defer s.stop()
	api := func(path string, v any) int {
		t.Helper()
		code, b := adminGet(t, dir, adm, path)
		if v != nil {
			json.Unmarshal(b, v)
		}
		return code
	}
	// livePids is every instance of every deployed function, by pid.
	livePids := func() map[int]string {
		var fns []struct {
			Name      string
			Instances []struct{ Pid int }
		}
		api("/v1/functions", &fns)
		out := map[int]string{}
		for _, f := range fns {
			for _, in := range f.Instances {
				out[in.Pid] = f.Name
			}
		}
		return out
	}
	// onlyLive checks that the processes under dir are exactly the live
	// instances (the tune's are gone), waiting a little for exits.
	onlyLive := func(when string, want map[int]string) {
		t.Helper()
		var procs []string
		for range 100 {
			procs = procsUnder(dir)
			if len(procs) == len(want) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, p := range procs {
			pid, _ := strconv.Atoi(strings.Fields(p)[0])
			if _, ok := want[pid]; !ok {
				t.Errorf("%s: process left behind: %s", when, p)
			}
		}
		if got := livePids(); len(got) != len(want) {
			t.Errorf("%s: instances %v, want %v", when, got, want)
		}
	}

	// The live version has one warm instance; the tune must not touch it.
	if resp, _ := s.get("/hello"); resp.StatusCode != 200 {
		t.Fatalf("GET /hello: %d", resp.StatusCode)
	}
	live := livePids()
	if len(live) != 1 {
		t.Fatalf("live instances: %v", live)
	}
	if code := api("/v1/functions/hello/tune/latest", nil); code != 404 {
		t.Errorf("latest before any tune: %d", code)
	}

	report := filepath.Join(dir, "report.json")
	out, err := s.cli("tune", "hello", "--cold", "2", "--invocations", "5", "--memory", "256,1769",
		"--out", report, "--out", filepath.Join(dir, "report.html"))
	t.Logf("stoke tune:\n%s", out)
	if err != nil {
		t.Fatalf("stoke tune: %v", err)
	}
	for _, want := range []string{"hello (version 1, deployed at 1769 MB): 2 cold starts and 5 warm invocations per size with GET /",
		" 256 MB", "*1769 MB", "Recommended by cost: ", "  by speed: ", "  by balanced (weight 0.5): "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	var rep tune.Report
	if b, err := os.ReadFile(report); err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("report.json: %v", err)
	}
	checkReport(t, &rep, []int{256, 1769}, 2, 5)
	if html, _ := os.ReadFile(filepath.Join(dir, "report.html")); !strings.Contains(string(html), "<svg") {
		t.Error("report.html has no chart")
	}
	var latest tune.Report
	if code := api("/v1/functions/hello/tune/latest", &latest); code != 200 || !latest.Started.Equal(rep.Started) || len(latest.Sizes) != 2 {
		t.Errorf("tune/latest: %d %+v", code, latest.Sizes)
	}
	onlyLive("after a tune", live)
	if resp, _ := s.get("/hello"); resp.Header.Get("X-Stoke-Cold") != "false" {
		t.Error("the live instance should still serve warm after a tune")
	}
	// The tune ran through gateway.Run with nothing recording: the
	// function's invocations are the two GET /hello, nothing of the tune's
	// 14. Records are written in order, in batches after the responses, so
	// once the second GET's is there any of the tune's would be too.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var recs []record.Record
		code, b := adminGet(t, dir, adm, "/v1/functions/hello/invocations?limit=100")
		if err := json.Unmarshal(b, &recs); code != 200 || err != nil {
			t.Fatalf("invocations: %d %v\n%s", code, err, b)
		}
		live := 0
		for _, r := range recs {
			if r.Path == "/hello" {
				live++
			}
		}
		if live == 2 {
			if len(recs) != 2 {
				t.Errorf("%d invocations recorded, want the 2 live ones: the tune's were recorded too", len(recs))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live invocations after 10 s: %d of 2", live)
		}
	}

	// Failure: the temporary version never starts; the error says why.
	out, err = s.cli("tune", "broken", "--cold", "1", "--invocations", "1", "--memory", "128")
	if err == nil || !strings.Contains(out, "tune of broken at 128 MB: cold start 1 of 1: ") || !strings.Contains(out, "no-such-command") {
		t.Errorf("tune of a broken function: %v\n%s", err, out)
	}
	onlyLive("after a failed tune", live)
	if out, err = s.cli("tune", "nope"); err == nil || !strings.Contains(out, `no function "nope" is deployed`) {
		t.Errorf("tune of an unknown function: %v\n%s", err, out)
	}

	// Interrupt: Ctrl-C midway cancels the request, and the server stops
	// the temporary instance. Slow invocations keep one alive to be caught.
	cmd := exec.Command(stokeBin, "tune", "hello", "--cold", "30", "--invocations", "5", "--memory", "256,512,1769",
		"--path", "/hello/sleep?ms=300", "--file", s.cfg)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	if !sc.Scan() || !strings.Contains(sc.Text(), "measuring 256 MB") {
		t.Fatalf("no progress from stoke tune: %q", sc.Text())
	}
	// One at a time: a second tune is refused while this one runs.
	if out, err := s.cli("tune", "hello", "--memory", "128"); err == nil || !strings.Contains(out, "a tune of hello is running") {
		t.Errorf("concurrent tune: %v\n%s", err, out)
	}
	for i := 0; len(procsUnder(dir)) < 2; i++ {
		if i == 200 {
			t.Fatalf("no temporary instance seen running: %v", procsUnder(dir))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	rest := ""
	for sc.Scan() {
		rest += sc.Text() + "\n"
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(rest, "tune interrupted") {
		t.Errorf("interrupted tune: %v\n%s", err, rest)
	}
	onlyLive("after an interrupted tune", live)
	for pid := range livePids() {
		if _, ok := live[pid]; !ok {
			t.Errorf("live instance changed: %v → %v", live, livePids())
		}
	}
	if !strings.Contains(s.out.String(), "TUNE stopped at ") {
		t.Error("the function's log should say the tune stopped")
	}
}

// checkReport checks a tune's numbers for sanity: every size present with
// its samples, cold slower than warm, and cost per 1M, less the request
// charge, in proportion to memory × billed ms.
func checkReport(t *testing.T, rep *tune.Report, mems []int, cold, warm int) {
	t.Helper()
	if len(rep.Sizes) != len(mems) {
		t.Fatalf("sizes: %+v", rep.Sizes)
	}
	p := rep.Prices
	for i, s := range rep.Sizes {
		if s.MemoryMB != mems[i] || len(s.Cold) != cold || len(s.Warm) != warm {
			t.Errorf("size %d: %d MB with %d cold and %d warm samples", i, s.MemoryMB, len(s.Cold), len(s.Warm))
		}
		for _, c := range s.Cold {
			if !c.Cold || c.InitMS <= 0 || c.TotalMS < c.InitMS+c.DurationMS {
				t.Errorf("%d MB: cold sample %+v", s.MemoryMB, c)
			}
		}
		// (Whether a cold request took longer than a warm one's median is
		// the machine's to say, from 2 and 5 samples under load: each cold
		// sample's total covering its init and duration is checked above.)
		if s.WarmP50MS <= 0 || s.WarmP99MS < s.WarmP50MS || s.ColdP95MS < s.ColdP50MS {
			t.Errorf("%d MB: cold p50 %v p95 %v, warm p50 %v p99 %v", s.MemoryMB, s.ColdP50MS, s.ColdP95MS, s.WarmP50MS, s.WarmP99MS)
		}
		if s.BilledMS < int64(s.WarmP50MS) || s.BilledMS < 1 {
			t.Errorf("%d MB: billed %d ms for a %v ms median", s.MemoryMB, s.BilledMS, s.WarmP50MS)
		}
		// $ per 1M = 1e6 × (request + billed s × GB × price).
		perMBms := (s.CostPer1M - 1e6*p.PerRequest) / (float64(s.MemoryMB) * float64(s.BilledMS))
		if want := 1e6 * p.PerGBSecond / 1024 / 1000; math.Abs(perMBms-want) > 1e-9*want {
			t.Errorf("%d MB: cost per 1M %v is %v per MB·ms, want %v", s.MemoryMB, s.CostPer1M, perMBms, want)
		}
		// The cold rate blends in cold requests billed with their init.
		if float64(s.ColdBilledMS) < s.InitP50MS {
			t.Errorf("%d MB: a cold request billed %d ms, less than its init p50 %v ms", s.MemoryMB, s.ColdBilledMS, s.InitP50MS)
		}
		rate := rep.Plan.ColdRate
		cold := 1e6 * (p.PerRequest + float64(s.ColdBilledMS)/1000*float64(s.MemoryMB)/1024*p.PerGBSecond)
		if want := (1-rate)*s.CostPer1M + rate*cold; math.Abs(s.CostPer1MAtColdRate-want) > 1e-9*want {
			t.Errorf("%d MB: cost per 1M at %v cold %v, want %v", s.MemoryMB, rate, s.CostPer1MAtColdRate, want)
		}
	}
	if len(rep.Recommendations) != 3 || rep.Recommendations[0].Strategy != "cost" {
		t.Errorf("recommendations: %+v", rep.Recommendations)
	}
}
