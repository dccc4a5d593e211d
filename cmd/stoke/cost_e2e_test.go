package main_test

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/record"
)

// `stoke cost` and /metrics against the real binary and examples/hello.
func TestCostEndToEnd(t *testing.T) {
	stokeBin, hello := build(t)
	dir := t.TempDir()
	gw, adm := freeAddr(t), freeAddr(t)
	cfg := writeConfig(t, dir, gw, adm, hello, "hi")
	// Pre-2021 billing, so the durations round to 100 ms.
	appendConfig(t, cfg, "billing:\n  granularity: 100ms\n")
	s := startStoke(t, stokeBin, cfg, gw)
	defer s.stop()

	for i := range 3 {
		if resp, _ := s.get("/hello"); resp.StatusCode != 200 || (resp.Header.Get("X-Stoke-Cold") == "true") != (i == 0) {
			t.Fatalf("request %d: %d cold=%s", i, resp.StatusCode, resp.Header.Get("X-Stoke-Cold"))
		}
	}

	// What was billed, invocation by invocation, as recorded: each duration
	// and the cold start's init in whole 100 ms steps. (How many steps
	// depends on the machine's load; the bill must add them up.)
	// Records reach the store in batches, after the responses: poll.
	var recs []record.Record
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, b := adminGet(t, dir, adm, "/v1/functions/hello/invocations?limit=10")
		recs = nil
		err := json.Unmarshal(b, &recs)
		if code == 200 && err == nil && len(recs) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("invocations after 10 s: %d %v, %d records\n%s", code, err, len(recs), b)
		}
	}
	var billedMS int64
	for _, r := range recs {
		if r.BilledMS%100 != 0 || float64(r.BilledMS) < r.DurationMS || float64(r.BilledMS) >= r.DurationMS+100 {
			t.Errorf("%.2f ms billed as %d ms, want the next 100 ms step", r.DurationMS, r.BilledMS)
		}
		billedMS += r.BilledMS
		if r.Cold {
			billedMS += int64(math.Ceil(r.InitMS/100)) * 100
		}
	}
	wantGBs := float64(billedMS) / 1000 * 1769 / 1024

	out, err := s.cli("cost", "--since", "1h")
	if err != nil {
		t.Fatalf("stoke cost: %v\n%s", err, out)
	}
	t.Logf("stoke cost --since 1h:\n%s", out)
	// hello: 3 invocations, 1 cold, 0 throttled; the GB-s above at 1769 MB;
	// request cost 3 × $0.0000002.
	row := regexp.MustCompile(`(?m)^\s*hello\s+3\s+1\s+0\s+(\d+\.\d{3})\s+\$0\.000000600\s+\$\d\.\d+\s+\$\d\.\d+\s+\$0\s+\$\d\.\d+\s*$`)
	m := row.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "last 1h; prices: $0.0000166667 per GB-s, $0.0000002 per request, init billed, keep-warm $0.0000041667 per GB-s, billed in 100ms steps") ||
		!strings.Contains(out, "keep_warm 1 would have removed 1 of 1 cold starts for $0.62/day") ||
		!regexp.MustCompile(`hello \(1769 MB, keep_warm 0\): duration p50 .* ms; deployed \d+s ago: keep-warm and the replay count from then\n`).MatchString(out) ||
		!regexp.MustCompile(`keep_alive adaptive, replayed: 1 cold starts where fixed:10m makes 1 — saved 0 cold starts \(\$0 of init\), keeping [\d.]+ GB-s idle`).MatchString(out) {
		t.Errorf("stoke cost:\n%s", out)
	} else if gbs, _ := strconv.ParseFloat(m[1], 64); math.Abs(gbs-wantGBs) > 0.0011 {
		t.Errorf("stoke cost bills %s GB-s, the records %.4f GB-s (%d ms at 1769 MB)", m[1], wantGBs, billedMS)
	}

	out, err = s.cli("cost", "hello", "--json")
	var rep struct {
		Functions []struct {
			Function    string
			Invocations int
			Total       float64
			Advice      []struct{ KeepWarm, Removed int } `json:"keep_warm_advice"`
		}
	}
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Functions) != 1 ||
		rep.Functions[0].Invocations != 3 || rep.Functions[0].Total <= 0 || len(rep.Functions[0].Advice) != 5 {
		t.Errorf("stoke cost --json: %v\n%s", err, out)
	}
	if out, err = s.cli("cost", "nope"); err == nil || !strings.Contains(out, "no function nope is deployed at http://") {
		t.Errorf("stoke cost nope: %v\n%s", err, out)
	}
	if out, err = s.cli("cost", "--since", "-1h"); err == nil {
		t.Errorf("negative --since accepted:\n%s", out)
	}

	// stoke simulate replays the same records through the admin API, over
	// a window given in days as the docs write it.
	out, err = s.cli("simulate", "--from-records", "all", "--since", "7d", "--policy", "fixed:10m,adaptive", "--format", "json")
	var sim struct {
		Functions, Invocations int
		Policies               []struct{ Policy string }
	}
	if err != nil || json.Unmarshal([]byte(out), &sim) != nil || sim.Functions != 1 || sim.Invocations != 3 || len(sim.Policies) != 2 {
		t.Errorf("stoke simulate --from-records all --since 7d: %v\n%s", err, out)
	}
	if out, err = s.cli("simulate", "--from-records", "hello", "--since", "7days"); err == nil || !strings.Contains(out, "allowed: e.g. 7d") {
		t.Errorf("--since 7days accepted: %v\n%s", err, out)
	}

	// Prometheus scrapes /metrics with the admin token as a bearer token.
	code, b := adminGet(t, dir, adm, "/metrics")
	if code != 200 || !strings.Contains(string(b), `stoke_invocations_total{cold="false",function="hello",status="200"} 2`) {
		t.Errorf("/metrics: %d\n%s", code, b)
	}
}
