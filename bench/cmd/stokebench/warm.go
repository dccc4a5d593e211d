package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// target is one thing the warm benchmark sends requests to.
type target struct {
	name string
	url  string
	pids func() []int // processes whose CPU time counts for this target
}

// benchWarm: warm latency at concurrency 1 and throughput at concurrency 64,
// Stoke against the app directly and against bench/cmd/plainproxy (httputil.ReverseProxy
// tuned for this load: bench/plainproxy) in front of
// the app, in interleaved rounds. The Stoke function has concurrency: 64 and
// max_instances: 1, so one app process serves all 64 connections, as in the
// baselines; memory 3538 gives it a quota of both CPUs. A second function,
// wl, serves Lambda's model at c=64 only: concurrency 1, up to 50 instances.
// -floors adds what anything on the request path costs at least, in front
// of the same app: a raw TCP relay and a minimal HTTP forwarder
// (bench/cmd/floorproxy), so that a target Stoke misses can be told apart
// from one no proxy could meet.
func benchWarm(ctx context.Context, e *env) error {
	app, proxy, appPort, proxyPort, err := e.baselines()
	if err != nil {
		return err
	}
	defer e.stop(app, 0)
	defer e.stop(proxy, 0)
	wcfg := fmt.Sprintf(`functions:
  w:
    runtime: http
    command: [%s]
    memory: 3538
    concurrency: 64
    max_instances: 1
    keep_warm: 1
    idle_timeout: 10m
    timeout: 10s
    routes: [/w]
    env: {GREETING: hi}
`, "./hello")
	// Lambda's model on the same Stoke (c=64 only): one request per
	// instance, up to 50 instances of 1769 MB (one CPU's quota each).
	lcfg := wcfg + fmt.Sprintf(`  wl:
    runtime: http
    command: [%s]
    memory: 1769
    concurrency: 1
    max_instances: 50
    idle_timeout: 10m
    timeout: 10s
    routes: [/wl]
    env: {GREETING: hi}
`, "./hello")
	cfg := lcfg
	if *flagWarmAB {
		cfg = wcfg // as main's binary gets it
	}
	s, err := e.startStoke(ctx, "warm", cfg, e.hello)
	if err != nil {
		return err
	}
	defer s.stop()
	// The same function on a Stoke that does not isolate it: the warm path
	// should not differ (concurrency 1 only).
	var plain *stokeProc
	if !*flagWarmAB {
		if plain, err = e.startStoke(ctx, "warm-plain", "sandbox: {isolation: false}\n"+wcfg, e.hello); err != nil {
			return err
		}
		defer plain.stop()
	}
	for _, a := range []string{fmt.Sprintf("127.0.0.1:%d", appPort), fmt.Sprintf("127.0.0.1:%d", proxyPort)} {
		if err := waitListen(ctx, a); err != nil {
			return err
		}
	}
	// The app process Stoke runs. Looked up again before every round: when
	// wrk stops it closes its 64 connections with requests in flight, and
	// Stoke discards an instance whose client went away mid-request, so
	// keep_warm starts a new one (see docs/BENCHMARKS.md).
	stokeApp, stokeInst := 0, ""
	findApp := func() (err error) {
		stokeApp, stokeInst, err = idleApp(s, "w")
		return err
	}
	if err := findApp(); err != nil {
		return err
	}
	// -main-bin: the same function on main's binary, a same-run baseline
	// for a change to Stoke itself (isolated, concurrency 64, as "stoke").
	var mainS *stokeProc
	mainApp := 0
	if *flagMainBin != "" {
		cur := e.stoke
		e.stoke = *flagMainBin
		mainS, err = e.startStoke(ctx, "warm-main", cfg, e.hello)
		e.stoke = cur
		if err != nil {
			return err
		}
		defer mainS.stop()
		if mainApp, _, err = idleApp(mainS, "w"); err != nil {
			return err
		}
	}
	ts := []target{
		{"direct", fmt.Sprintf("http://127.0.0.1:%d/w", appPort), func() []int { return []int{app.Process.Pid} }},
		{"plainproxy", fmt.Sprintf("http://127.0.0.1:%d/w", proxyPort), func() []int { return []int{proxy.Process.Pid, app.Process.Pid} }},
		{"stoke", s.gw + "/w", func() []int { return []int{s.pid, stokeApp} }},
	}
	if !*flagWarmAB {
		ts = append(ts, target{"stoke, not isolated", plain.gw + "/w", func() []int { return []int{plain.pid} }})
	}
	iMain := -1
	if mainS != nil {
		iMain = len(ts)
		ts = append(ts, target{"stoke, main's binary", mainS.gw + "/w", func() []int { return []int{mainS.pid, mainApp} }})
	}
	// -floors: the least anything on the request path can cost.
	var floors []int // indices in ts
	if *flagFloors {
		for _, f := range [][2]string{{"tcp", "floor: raw TCP relay (splice)"}, {"http", "floor: minimal HTTP forwarder"}} {
			addr := fmt.Sprintf("127.0.0.1:%d", freePort())
			c, err := e.start(filepath.Join(e.dir, "floor-"+f[0]+".log"), nil, e.floor, "-mode", f[0], "-listen", addr, "-target", fmt.Sprintf("127.0.0.1:%d", appPort))
			if err != nil {
				return err
			}
			defer e.stop(c, 0)
			if err := waitListen(ctx, addr); err != nil {
				return err
			}
			floors = append(floors, len(ts))
			ts = append(ts, target{f[1], "http://" + addr + "/w", func() []int { return []int{c.Process.Pid, app.Process.Pid} }})
		}
	}
	c1 := ts
	iLambda, iLambdaMain := -1, -1 // wrk only
	var poolFloors []int           // indices in ts, wrk only
	if !*flagWarmAB {
		// Stoke's CPU and its instances' (looked up before each round).
		lambdaPids := func(s *stokeProc) func() []int {
			return func() []int {
				out := []int{s.pid}
				if fs, err := s.functions(); err == nil {
					for _, in := range fs["wl"].Instances {
						if in.Pid > 0 {
							out = append(out, in.Pid)
						}
					}
				}
				return out
			}
		}
		iLambda = len(ts)
		ts = append(ts, target{"stoke, Lambda model (concurrency 1, ≤ 50 instances)", s.gw + "/wl", lambdaPids(s)})
		if mainS != nil {
			iLambdaMain = len(ts)
			ts = append(ts, target{"stoke, main's binary, Lambda model", mainS.gw + "/wl", lambdaPids(mainS)})
		}
		// -floors: the pool floor, Lambda's model with nothing but the
		// forwarding: 50 copies of the app, one request each at a time.
		if *flagFloors {
			for _, v := range []struct{ cg, batch bool }{{false, false}, {false, true}, {true, false}, {true, true}} {
				pool, err := e.startAppPool(v.cg, v.batch)
				if err != nil {
					if v.cg {
						fmt.Printf("pool floor with cgroups: not run: %v\n", err)
						continue
					}
					return err
				}
				defer pool.stop(e)
				where, tag := "root cgroup", "root"
				if v.cg {
					where, tag = "a cpu cgroup each, 1-CPU quota", "cg"
				}
				if v.batch {
					where, tag = where+", SCHED_BATCH", tag+"-batch"
				}
				name := fmt.Sprintf("floor: minimal HTTP forwarder, %d apps of one request each (%s)", poolFloorApps, where)
				c, addr, err := e.startPoolFloor(ctx, pool, tag)
				if err != nil {
					return err
				}
				defer e.stop(c, 0)
				poolFloors = append(poolFloors, len(ts))
				ts = append(ts, target{name, "http://" + addr + "/wl", func() []int { return append([]int{c.Process.Pid}, pool.pids()...) }})
			}
		}
	}

	// (a) concurrency 1: a keep-alive Go client loop.
	lat, roundMed, err := c1Rounds(ctx, c1, *flagRounds, *flagReqs)
	if err != nil {
		return err
	}
	fmt.Printf("(a) concurrency 1, %d rounds × %d requests each, interleaved\n", *flagRounds, *flagReqs)
	p50 := printC1(c1, lat, roundMed)
	added := make([]time.Duration, len(c1))
	for k := range c1 {
		added[k] = p50[k] - p50[0]
	}
	ratio := float64(added[2]) / float64(added[1])
	verdict := "MET"
	if ratio > 0.75 {
		verdict = fmt.Sprintf("MISSED: %.2f× instead of ≤ 0.75× (%s more than 0.75× the proxy's)", ratio, us(added[2]-time.Duration(0.75*float64(added[1]))))
	}
	fmt.Printf("target: stoke adds ≤ 0.75× what plainproxy adds at p50: %.2f× → %s\n", ratio, verdict)
	for _, k := range floors {
		fmt.Printf("%s adds %s at p50: %.2f× what plainproxy adds (stoke's target: ≤ 0.75×)\n", ts[k].name, us(added[k]), float64(added[k])/float64(added[1]))
	}
	if iMain >= 0 {
		fmt.Printf("stoke adds %.2f× what main's binary adds at p50 (%s vs %s)\n", float64(added[2])/float64(added[iMain]), us(added[2]), us(added[iMain]))
	}

	// (b) concurrency 64 with wrk.
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("wrk not found (apt-get install -y wrk): %w", err)
	}
	type wres struct {
		rps, p50, p99 []float64
		cpu           [][]float64 // per pid index: CPU µs per request
		napps         []float64   // apps: how many app processes were summed
		non2xx, errs  int
	}
	ws := make([]wres, len(ts))
	// Lambda's model starts its instances at the first load: warm them
	// up, unmeasured, so the rounds compare warm paths (the pool floors
	// too, alike).
	// Those rows' pids()[1:] are many app processes, whose CPU is summed
	// into one "apps" figure.
	lambdaModel := func(k int) bool { return k == iLambda || k == iLambdaMain || slices.Contains(poolFloors, k) }
	for k, t := range ts {
		if !lambdaModel(k) {
			continue
		}
		if out, err := exec.CommandContext(ctx, "wrk", "-t2", "-c64", "-d3s", t.url).CombinedOutput(); err != nil {
			return fmt.Errorf("wrk warm-up %s: %v\n%s", t.name, err, out)
		}
	}
	var periods, throttled, thrNS int64
	replaced := 0
	for r := 0; r < *flagWrk; r++ {
		for i := range ts {
			k := roundOrder(i, r, len(ts))
			if ts[k].name == "stoke, not isolated" {
				continue // (a) only
			}
			var cpuStat string
			var thrBefore map[string]int64
			if ts[k].name == "stoke" {
				old := stokeApp
				if err := findApp(); err != nil {
					return err
				}
				if old != stokeApp {
					replaced++
				}
				cpuStat = fmt.Sprintf("/sys/fs/cgroup/cpu/stoke/%d/%s/cpu.stat", s.pid, stokeInst)
				thrBefore = readKV(cpuStat)
			}
			if k == iMain {
				if mainApp, _, err = idleApp(mainS, "w"); err != nil {
					return err
				}
			}
			pids := ts[k].pids()
			before := make([]time.Duration, len(pids))
			for j, p := range pids {
				before[j] = cpuTime(p)
			}
			out, err := exec.CommandContext(ctx, "wrk", "-t2", "-c64", "-d"+*flagWrkDur, "--latency", ts[k].url).CombinedOutput()
			if err != nil {
				return fmt.Errorf("wrk %s: %v\n%s", ts[k].name, err, out)
			}
			w, err := parseWrk(string(out))
			if err != nil {
				return fmt.Errorf("wrk %s: %v\n%s", ts[k].name, err, out)
			}
			if cpuStat != "" {
				// Read right after wrk: the instance may be discarded soon.
				if thr := readKV(cpuStat); thr != nil && thrBefore != nil {
					periods += thr["nr_periods"] - thrBefore["nr_periods"]
					throttled += thr["nr_throttled"] - thrBefore["nr_throttled"]
					thrNS += thr["throttled_time"] - thrBefore["throttled_time"]
				}
			}
			ws[k].rps = append(ws[k].rps, w.rps)
			ws[k].p50 = append(ws[k].p50, w.p50)
			ws[k].p99 = append(ws[k].p99, w.p99)
			ws[k].non2xx += w.non2xx
			ws[k].errs += w.errs
			used := make([]float64, len(pids))
			for j, p := range pids {
				used[j] = float64(cpuTime(p)-before[j]) / 1e3 / float64(w.reqs)
			}
			if lambdaModel(k) && len(used) > 1 { // the front, then the apps summed
				sum := 0.0
				for _, u := range used[1:] {
					sum += u
				}
				used = []float64{used[0], sum}
				ws[k].napps = append(ws[k].napps, float64(len(pids)-1))
			}
			if ws[k].cpu == nil {
				ws[k].cpu = make([][]float64, len(used))
			}
			for j := range used {
				if j < len(ws[k].cpu) {
					ws[k].cpu[j] = append(ws[k].cpu[j], used[j])
				}
			}
		}
	}
	fmt.Printf("\n(b) wrk -t2 -c64 -d%s, %d rounds each, interleaved (medians over rounds)\n", *flagWrkDur, *flagWrk)
	fmt.Printf("| target | req/s (rounds) | ratio to direct | p50 | p99 | non-2xx | socket errors | CPU µs/req |\n|---|---|---|---|---|---|---|---|\n")
	dr := medianF(ws[0].rps)
	ratios := make([]float64, len(ts))
	for k, t := range ts {
		if len(ws[k].rps) == 0 {
			continue // not measured under wrk
		}
		var rounds []string
		for _, v := range ws[k].rps {
			rounds = append(rounds, fmt.Sprintf("%.0f", v))
		}
		var cpu []string
		names := map[int]string{0: "proxy", 1: "app"}
		if k == 0 {
			names = map[int]string{0: "app"}
		} else if k == 2 || k == iMain {
			names = map[int]string{0: "stoke", 1: "app"}
		} else if k == iLambda || k == iLambdaMain {
			names = map[int]string{0: "stoke", 1: fmt.Sprintf("%.0f apps", medianF(ws[k].napps))}
		} else if slices.Contains(floors, k) {
			names = map[int]string{0: "floor", 1: "app"}
		} else if slices.Contains(poolFloors, k) {
			names = map[int]string{0: "floor", 1: fmt.Sprintf("%.0f apps", medianF(ws[k].napps))}
		}
		for j := range ws[k].cpu {
			cpu = append(cpu, fmt.Sprintf("%s %.1f", names[j], medianF(ws[k].cpu[j])))
		}
		// Per-round ratio to the direct round of the same round index.
		var per []float64
		for r := range ws[k].rps {
			per = append(per, ws[k].rps[r]/ws[0].rps[r])
		}
		ratios[k] = medianF(per)
		fmt.Printf("| %s | %.0f (%s) | %.2f (median of per-round %.2f) | %.2f ms | %.2f ms | %d | %d | %s |\n", t.name, medianF(ws[k].rps), strings.Join(rounds, ", "),
			medianF(ws[k].rps)/dr, ratios[k], medianF(ws[k].p50), medianF(ws[k].p99), ws[k].non2xx, ws[k].errs, strings.Join(cpu, ", "))
	}
	fmt.Printf("stoke's instance cgroup (quota 2 CPUs) during the stoke rounds: nr_periods %d, nr_throttled %d, throttled_time %.1f ms\n", periods, throttled, float64(thrNS)/1e6)
	fmt.Printf("stoke's app process was a new one (the previous instance had been discarded) before %d of %d stoke rounds\n", replaced, *flagWrk)
	tr := ratios[2] / ratios[1]
	verdict = "MET"
	if tr < 1.5 {
		verdict = fmt.Sprintf("MISSED by %.2f", 1.5-tr)
	}
	fmt.Printf("target: stoke's ratio to direct ≥ 1.5× plainproxy's: %.2f / %.2f = %.2f× → %s\n", ratios[2], ratios[1], tr, verdict)
	if iMain >= 0 {
		fmt.Printf("stoke's ratio to direct against main's binary's: %.2f / %.2f = %.2f×\n", ratios[2], ratios[iMain], ratios[2]/ratios[iMain])
	}
	for _, k := range floors {
		fmt.Printf("%s: ratio to direct %.2f = %.2f× plainproxy's (stoke's target: ≥ 1.5×); its own CPU %.1f µs/req, plainproxy's %.1f\n",
			ts[k].name, ratios[k], ratios[k]/ratios[1], medianF(ws[k].cpu[0]), medianF(ws[1].cpu[0]))
	}
	if iLambda < 0 {
		return nil
	}
	lr := ratios[iLambda] / ratios[1]
	verdict = "MET"
	if lr < 1.0 {
		verdict = fmt.Sprintf("MISSED by %.2f", 1.0-lr)
	}
	fmt.Printf("target: with Lambda's model, stoke's ratio to direct ≥ 1.0× plainproxy's: %.2f / %.2f = %.2f× → %s\n", ratios[iLambda], ratios[1], lr, verdict)
	if iLambdaMain >= 0 {
		fmt.Printf("with Lambda's model, stoke's ratio to direct against main's binary's: %.2f / %.2f = %.2f×\n", ratios[iLambda], ratios[iLambdaMain], ratios[iLambda]/ratios[iLambdaMain])
	}
	for _, k := range poolFloors {
		fmt.Printf("%s: ratio to direct %.2f = %.2f× plainproxy's (stoke's Lambda-model target: ≥ 1.0×), %.2f× stoke's Lambda model; its own CPU %.1f µs/req, its apps' %.1f\n",
			ts[k].name, ratios[k], ratios[k]/ratios[1], ratios[k]/ratios[iLambda], medianF(ws[k].cpu[0]), medianF(ws[k].cpu[1]))
	}
	return nil
}

// roundOrder is the target run i-th in round r of n targets: rotated each
// round, and reversed every other round, so over the rounds each target
// runs in every position and after each of the others, not always after the
// same one (which biased a same-code A/B by ~10 % of throughput).
func roundOrder(i, r, n int) int {
	if r%2 == 1 {
		i = n - 1 - i
	}
	return (i + r/2) % n
}

// idleApp finds an idle instance of function fn on s (waiting up to 20 s
// for one): its app's pid and the instance id.
func idleApp(s *stokeProc, fn string) (int, string, error) {
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		fs, err := s.functions()
		if err != nil {
			return 0, "", err
		}
		for _, in := range fs[fn].Instances {
			if in.State == "idle" && in.Pid > 0 {
				return in.Pid, in.ID, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, "", fmt.Errorf("no idle instance of %s: %+v", fn, fs[fn])
		}
	}
}

// baselines starts examples/hello on its own and bench/cmd/plainproxy (a
// tuned httputil.ReverseProxy) in front of it, on free ports. On error
// nothing is left running.
func (e *env) baselines() (app, proxy *exec.Cmd, appPort, proxyPort int, err error) {
	appPort, proxyPort = freePort(), freePort()
	app, err = e.start(filepath.Join(e.dir, fmt.Sprintf("app-%d.log", appPort)), []string{fmt.Sprintf("PORT=%d", appPort), "GREETING=hi"}, e.hello)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	args := []string{"-listen", fmt.Sprintf("127.0.0.1:%d", proxyPort), "-target", fmt.Sprintf("http://127.0.0.1:%d", appPort)}
	proxy, err = e.start(filepath.Join(e.dir, fmt.Sprintf("proxy-%d.log", proxyPort)), nil, e.proxy, args...)
	if err != nil {
		e.stop(app, 0)
		return nil, nil, 0, 0, err
	}
	return app, proxy, appPort, proxyPort, nil
}

// c1Rounds sends rounds × reqs GETs to each target, one at a time on a
// kept-alive connection per target (after 500 to warm up), the targets
// interleaved and their order rotated each round. It returns every latency
// per target and each round's median.
func c1Rounds(ctx context.Context, ts []target, rounds, reqs int) (lat, roundMed [][]time.Duration, err error) {
	lat, roundMed = make([][]time.Duration, len(ts)), make([][]time.Duration, len(ts))
	clients := make([]*http.Client, len(ts))
	for k := range ts {
		clients[k] = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
		if _, err := loop(ctx, clients[k], ts[k].url, 500); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", ts[k].name, err)
		}
	}
	for r := 0; r < rounds; r++ {
		for i := range ts {
			k := roundOrder(i, r, len(ts))
			d, err := loop(ctx, clients[k], ts[k].url, reqs)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", ts[k].name, err)
			}
			lat[k] = append(lat[k], d...)
			roundMed[k] = append(roundMed[k], pct(d, .5))
		}
	}
	return lat, roundMed, nil
}

// printC1 prints c1Rounds' table, each target against the first, and
// returns the p50s.
func printC1(ts []target, lat, roundMed [][]time.Duration) []time.Duration {
	fmt.Printf("| target | p50 | p99 | added p50 | added p99 | median of per-round added p50 |\n|---|---|---|---|---|---|\n")
	d50, d99 := pct(lat[0], .5), pct(lat[0], .99)
	p50s := make([]time.Duration, len(ts))
	for k, t := range ts {
		p50, p99 := pct(lat[k], .5), pct(lat[k], .99)
		var per []float64
		for r := range roundMed[k] {
			per = append(per, float64(roundMed[k][r]-roundMed[0][r]))
		}
		p50s[k] = p50
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", t.name, us(p50), us(p99), us(p50-d50), us(p99-d99), us(time.Duration(medianF(per))))
	}
	return p50s
}

// loop sends n GETs one after another on one kept-alive connection.
func loop(ctx context.Context, c *http.Client, url string, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		if i%256 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		t0 := time.Now()
		resp, err := c.Get(url)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("status %s", resp.Status)
		}
		out = append(out, d)
	}
	return out, nil
}

func waitListen(ctx context.Context, addr string) error {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s does not listen", addr)
		}
	}
}

type wrkOut struct {
	rps, p50, p99 float64 // p50, p99 in ms
	reqs          int
	non2xx, errs  int
}

var (
	reRPS    = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	reReqs   = regexp.MustCompile(`(\d+) requests in`)
	reNon2xx = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reSock   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	rePct    = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
)

func parseWrk(s string) (wrkOut, error) {
	var w wrkOut
	m := reRPS.FindStringSubmatch(s)
	n := reReqs.FindStringSubmatch(s)
	if m == nil || n == nil {
		return w, fmt.Errorf("cannot parse wrk output")
	}
	w.rps, _ = strconv.ParseFloat(m[1], 64)
	w.reqs, _ = strconv.Atoi(n[1])
	if m := reNon2xx.FindStringSubmatch(s); m != nil {
		w.non2xx, _ = strconv.Atoi(m[1])
	}
	if m := reSock.FindStringSubmatch(s); m != nil {
		for _, x := range m[1:] {
			v, _ := strconv.Atoi(x)
			w.errs += v
		}
	}
	for _, m := range rePct.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if m[1] == "50" {
			w.p50 = v
		} else {
			w.p99 = v
		}
	}
	return w, nil
}

// readKV reads a cgroup file of "key value" lines (cpu.stat); nil if absent.
func readKV(path string) map[string]int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	m := map[string]int64{}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			m[f[0]], _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return m
}
