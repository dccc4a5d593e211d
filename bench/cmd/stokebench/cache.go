package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"time"
)

var (
	flagCacheRounds = flag.Int("cache-rounds", 5, "cache: c=1 rounds per target")
	flagCacheReqs   = flag.Int("cache-reqs", 5000, "cache: requests per c=1 round")
	flagCacheWrk    = flag.Int("cache-wrk-rounds", 3, "cache: wrk rounds per target")
	flagCacheCold   = flag.Int("cache-cold", 30, "cache: stale-while-cold samples (each waits ~1.2 s for the entry to go stale)")
)

// benchCache: the response cache. (a, b) a hit against the warm invoke path
// of the same app and against a tuned httputil.ReverseProxy hop (buffer
// pool, keep-alive pool sized for the load) in front of it, at c=1 and
// with wrk -c64, interleaved. (c) a stale-while-cold answer against a hit,
// in pairs: each pair is a stale answer from a function whose instance was
// reaped (so a cold start runs in the background) and, right after it, a
// hit on another function while that cold start is still going.
func benchCache(ctx context.Context, e *env) error {
	app, proxy, appPort, proxyPort, err := e.baselines()
	if err != nil {
		return err
	}
	defer e.stop(app, 0)
	defer e.stop(proxy, 0)
	s, err := e.startStoke(ctx, "cache", fmt.Sprintf(`functions:
  w:
    runtime: http
    command: [%[1]s]
    memory: 3538
    concurrency: 64
    max_instances: 1
    keep_warm: 1
    routes: [/w]
    env: {GREETING: hi}
  c:
    runtime: http
    command: [%[1]s]
    memory: 3538
    concurrency: 64
    max_instances: 1
    keep_warm: 1
    routes: [/c]
    env: {GREETING: hi}
    cache: {max_bytes: 64MB}
  s:
    runtime: http
    command: [%[1]s]
    memory: 1769
    max_instances: 1
    idle_timeout: 100ms
    routes: [/s]
    env: {GREETING: hi}
    cache: {max_bytes: 64MB, stale_if_cold: 10m}
`, "./hello"), e.hello)
	if err != nil {
		return err
	}
	defer s.stop()
	for _, a := range []string{fmt.Sprintf("127.0.0.1:%d", appPort), fmt.Sprintf("127.0.0.1:%d", proxyPort)} {
		if err := waitListen(ctx, a); err != nil {
			return err
		}
	}
	const q = "?max-age=3600"
	ts := []target{
		{"direct", fmt.Sprintf("http://127.0.0.1:%d/w%s", appPort, q), func() []int { return []int{app.Process.Pid} }},
		{"tuned proxy", fmt.Sprintf("http://127.0.0.1:%d/w%s", proxyPort, q), func() []int { return []int{proxy.Process.Pid, app.Process.Pid} }},
		{"stoke warm", s.gw + "/w" + q, func() []int { return []int{s.pid} }},
		{"stoke hit", s.gw + "/c" + q, func() []int { return []int{s.pid} }},
	}

	// (a) concurrency 1. The first request stores c's entry.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}, Timeout: 10 * time.Second}
	for _, want := range []string{"stoke; fwd=uri-miss", "stoke; hit"} {
		if st, err := cacheStatus(hc, ts[3].url); err != nil || !strings.HasPrefix(st, want) {
			return fmt.Errorf("the cached function: %q, want %s (%v)", st, want, err)
		}
	}
	lat, roundMed, err := c1Rounds(ctx, ts, *flagCacheRounds, *flagCacheReqs)
	if err != nil {
		return err
	}
	fmt.Printf("(a) concurrency 1, %d rounds × %d requests each, interleaved\n", *flagCacheRounds, *flagCacheReqs)
	p50 := printC1(ts, lat, roundMed)
	verdict := "MET"
	if p50[3] >= p50[1] {
		verdict = fmt.Sprintf("MISSED by %s", us(p50[3]-p50[1]))
	}
	fmt.Printf("target: a hit (p50 %s) costs less than a hop through the tuned proxy to the app (p50 %s): %.2f× → %s; against the warm invoke path (p50 %s): %.2f×\n",
		us(p50[3]), us(p50[1]), float64(p50[3])/float64(p50[1]), verdict, us(p50[2]), float64(p50[3])/float64(p50[2]))

	// (b) wrk -c64.
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("wrk not found (apt-get install -y wrk): %w", err)
	}
	rps := make([][]float64, len(ts))
	cpu := make([][]float64, len(ts))
	wp50, wp99 := make([][]float64, len(ts)), make([][]float64, len(ts))
	for r := 0; r < *flagCacheWrk; r++ {
		for i := range ts {
			k := (i + r) % len(ts)
			pids := ts[k].pids()
			before := time.Duration(0)
			for _, p := range pids {
				before += cpuTime(p)
			}
			out, err := exec.CommandContext(ctx, "wrk", "-t2", "-c64", "-d"+*flagWrkDur, "--latency", ts[k].url).CombinedOutput()
			if err != nil {
				return fmt.Errorf("wrk %s: %v\n%s", ts[k].name, err, out)
			}
			w, err := parseWrk(string(out))
			if err != nil {
				return fmt.Errorf("wrk %s: %v\n%s", ts[k].name, err, out)
			}
			if w.non2xx+w.errs > 0 {
				return fmt.Errorf("wrk %s: %d non-2xx, %d socket errors", ts[k].name, w.non2xx, w.errs)
			}
			after := time.Duration(0)
			for _, p := range pids {
				after += cpuTime(p)
			}
			rps[k] = append(rps[k], w.rps)
			wp50[k], wp99[k] = append(wp50[k], w.p50), append(wp99[k], w.p99)
			cpu[k] = append(cpu[k], float64(after-before)/1e3/float64(w.reqs))
		}
	}
	fmt.Printf("\n(b) wrk -t2 -c64 -d%s, %d rounds each, interleaved (medians over rounds)\n", *flagWrkDur, *flagCacheWrk)
	fmt.Printf("| target | req/s (rounds) | p50 | p99 | CPU µs/req (proxy+app; stoke only) |\n|---|---|---|---|---|\n")
	for k, t := range ts {
		var rounds []string
		for _, v := range rps[k] {
			rounds = append(rounds, fmt.Sprintf("%.0f", v))
		}
		fmt.Printf("| %s | %.0f (%s) | %.2f ms | %.2f ms | %.1f |\n", t.name, medianF(rps[k]), strings.Join(rounds, ", "), medianF(wp50[k]), medianF(wp99[k]), medianF(cpu[k]))
	}
	fmt.Printf("hit throughput: %.2f× the tuned proxy's, %.2f× the warm invoke path's\n", medianF(rps[3])/medianF(rps[1]), medianF(rps[3])/medianF(rps[2]))

	// (c) stale-while-cold against a hit.
	staleURL := s.gw + "/s?max-age=1"
	if st, err := cacheStatus(hc, staleURL); err != nil || !strings.Contains(st, "stored") {
		return fmt.Errorf("s: the first answer was not stored: %q %v", st, err)
	}
	var stale, hit []time.Duration
	for i := 0; i < *flagCacheCold; i++ {
		// Until the instance is reaped and the entry (max-age=1) is stale.
		storedAt := time.Now()
		for {
			fs, err := s.functions()
			if err != nil {
				return err
			}
			if len(fs["s"].Instances) == 0 && time.Since(storedAt) > 1200*time.Millisecond {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(10 * time.Millisecond)
		}
		t0 := time.Now()
		st, err := cacheStatus(hc, staleURL)
		ds := time.Since(t0)
		if err != nil || !strings.Contains(st, "detail=stale-if-cold") {
			return fmt.Errorf("sample %d: not a stale-while-cold answer: %q %v", i, st, err)
		}
		t1 := time.Now()
		st, err = cacheStatus(hc, ts[3].url)
		dh := time.Since(t1)
		if err != nil || !strings.HasPrefix(st, "stoke; hit") {
			return fmt.Errorf("sample %d: not a hit: %q %v", i, st, err)
		}
		// The background refresh was still starting its instance (or had
		// just), so the hit ran alongside a cold start.
		stale, hit = append(stale, ds), append(hit, dh)
		for {
			fs, err := s.functions()
			if err != nil {
				return err
			}
			if len(fs["s"].Instances) > 0 || ctx.Err() != nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	// The refreshes' records are written once each refresh has answered.
	cold := 0
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var recs []struct {
			Cold  bool   `json:"cold"`
			Cache string `json:"cache"`
		}
		if err := s.get("/v1/functions/s/invocations?limit=1000", &recs); err != nil {
			return err
		}
		cold = 0
		for _, r := range recs {
			if r.Cache == "refresh" && r.Cold {
				cold++
			}
		}
		if cold >= len(stale) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
	}
	fmt.Printf("\n(c) stale-while-cold vs a hit during the background cold start, %d pairs\n", len(stale))
	fmt.Printf("| answer | p50 | p99 | max |\n|---|---|---|---|\n")
	fmt.Printf("| stale (stale_if_cold, instance reaped) | %s | %s | %s |\n", us(pct(stale, .5)), us(pct(stale, .99)), us(pct(stale, 1)))
	fmt.Printf("| hit, right after, while the refresh cold-starts | %s | %s | %s |\n", us(pct(hit, .5)), us(pct(hit, .99)), us(pct(hit, 1)))
	diff := pct(stale, .5) - pct(hit, .5)
	verdict = "MET"
	if diff > time.Millisecond {
		verdict = fmt.Sprintf("MISSED by %s", us(diff-time.Millisecond))
	}
	fmt.Printf("background refreshes recorded as cold invocations: %d of %d samples\n", cold, len(stale))
	fmt.Printf("target: a stale-while-cold answer within 1 ms of a hit (p50): %s → %s\n", us(diff), verdict)
	return nil
}

// cacheStatus GETs url and returns its Cache-Status.
func cacheStatus(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return resp.Header.Get("Cache-Status"), nil
}
