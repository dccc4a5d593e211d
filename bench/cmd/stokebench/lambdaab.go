package main

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// benchLambdaAB is lambda-warm -lambda-ab: the Lambda warm target's A/B.
// Only the rows the target compares, at concurrency 1: this build's Invoke
// API and (with -main-bin) main's, through aws-sdk-go-v2's Lambda client,
// and AWS's Runtime Interface Emulator running the same bootstrap with the
// same client; for information, the floor of the client and one HTTP hop
// (the same client against bench/cmd/echohttp, no Lambda). Each round runs every target once in a random order (a fixed
// or rotating order makes one target always pay for the one before it), and
// the ratios are taken per round: the load on this machine swings within a
// run, two targets of one round see nearly the same load.
func benchLambdaAB(ctx context.Context, e *env) error {
	echoBin, err := e.buildBin(ctx, "lambda-echo", "./examples/lambda-echo")
	if err != nil {
		return err
	}
	httpBin, err := e.buildBin(ctx, "echohttp", "./bench/cmd/echohttp")
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf(`region: us-east-1
account_id: "000000000000"
invoke_api:
  auth: none
functions:
  echo:
    runtime: lambda
    command: [%s]
    memory: 1769
    timeout: 10s
    concurrency: 1
    max_instances: 1
    keep_warm: 1
    idle_timeout: 10m
`, "./lambda-echo")
	s, err := e.startStoke(ctx, "lambda-ab", cfg, echoBin)
	if err != nil {
		return err
	}
	defer s.stopWith()
	mainS, err := e.startMainStoke(ctx, "lambda-ab-main", cfg, echoBin)
	if err != nil {
		return err
	}
	if mainS != nil {
		defer mainS.stopWith()
	}
	riePath := *flagRIE
	if riePath == "" {
		if riePath, err = e.buildRIE(ctx); err != nil {
			return fmt.Errorf("the A/B needs AWS's emulator: %w", err)
		}
	}
	rie, rp, stopRIE, err := e.startRIE(ctx, riePath, echoBin)
	if err != nil {
		return err
	}
	defer stopRIE()
	// The floor of the client and one HTTP hop: the same client against
	// lambda-echo's handler as a plain HTTP app that answers at once (the
	// SDK takes its 200 and body as the invocation's payload).
	appPort := freePort()
	app, err := e.start(filepath.Join(e.dir, "echohttp.log"), []string{fmt.Sprintf("PORT=%d", appPort)}, httpBin)
	if err != nil {
		return err
	}
	defer e.stop(app, 0)
	if err := waitListen(ctx, fmt.Sprintf("127.0.0.1:%d", appPort)); err != nil {
		return err
	}
	if err := s.waitInstances(ctx, "echo", 1, 30*time.Second); err != nil {
		return err
	}
	if mainS != nil {
		if err := mainS.waitInstances(ctx, "echo", 1, 30*time.Second); err != nil {
			return err
		}
	}

	rpid := rie.Process.Pid
	ts := []lwTarget{
		{name: "Stoke, this build", newW: sdkWorker(s.gw, "echo", aws.AnonymousCredentials{}),
			server: func() []int { return []int{s.pid} }, app: func() []int { return s.instancePids("echo") }},
		{name: "AWS RIE (baseline)", newW: sdkWorker(fmt.Sprintf("http://127.0.0.1:%d", rp), "function", aws.AnonymousCredentials{}),
			server: func() []int { return []int{rpid} }, app: func() []int { return children(rpid) }},
		{name: "floor: the same client → echohttp, no Lambda (info)", newW: sdkWorker(fmt.Sprintf("http://127.0.0.1:%d", appPort), "echo", aws.AnonymousCredentials{}),
			server: func() []int { return nil }, app: func() []int { return []int{app.Process.Pid} }},
	}
	const iNew, iRIE, iFloor = 0, 1, 2
	iMain := -1
	if mainS != nil {
		iMain = len(ts)
		ts = append(ts, lwTarget{name: "Stoke, main's binary", newW: sdkWorker(mainS.gw, "echo", aws.AnonymousCredentials{}),
			server: func() []int { return []int{mainS.pid} }, app: func() []int { return mainS.instancePids("echo") }})
	}
	pidsBefore := [][]int{s.instancePids("echo"), nil}
	if mainS != nil {
		pidsBefore[1] = mainS.instancePids("echo")
	}

	ws := make([]worker, len(ts))
	for k := range ts {
		ws[k] = ts[k].newW()
		if _, err := runLoad(ctx, []worker{ws[k]}, 300, 0); err != nil { // warm-up, unmeasured
			return fmt.Errorf("%s: warm-up: %w", ts[k].name, err)
		}
	}
	type stats struct {
		lat            []time.Duration
		p50            []float64 // per round
		srv, appc, cli []float64 // CPU µs per request, per round
	}
	st := make([]stats, len(ts))
	self := []int{os.Getpid()}
	rounds, reqs := *flagLRounds, *flagLReqs
	for r := range rounds {
		for _, k := range rand.Perm(len(ts)) {
			sp, apids := ts[k].server(), ts[k].app()
			s0, a0, c0 := cpuOf(sp), cpuOf(apids), cpuOf(self)
			res, err := runLoad(ctx, []worker{ws[k]}, reqs, 0)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", ts[k].name, r, err)
			}
			n := float64(len(res.lat))
			st[k].srv = append(st[k].srv, float64(cpuOf(sp)-s0)/1e3/n)
			st[k].appc = append(st[k].appc, float64(cpuOf(apids)-a0)/1e3/n)
			st[k].cli = append(st[k].cli, float64(cpuOf(self)-c0)/1e3/n)
			st[k].lat = append(st[k].lat, res.lat...)
			st[k].p50 = append(st[k].p50, float64(pct(res.lat, .5)))
		}
	}
	fmt.Printf("lambda-warm A/B: %d rounds × %d requests per target, c=1, aws-sdk-go-v2 Lambda client, a random order every round\n", rounds, reqs)
	fmt.Printf("| target | requests | p50 | p99 | CPU µs/req: server + app + client |\n|---|---|---|---|---|\n")
	for k, t := range ts {
		fmt.Printf("| %s | %d | %s | %s | %.0f + %.0f + %.0f |\n", t.name, len(st[k].lat), us(pct(st[k].lat, .5)), us(pct(st[k].lat, .99)),
			medianF(st[k].srv), medianF(st[k].appc), medianF(st[k].cli))
	}
	ratio := func(a, b int) (float64, []float64) {
		var v []float64
		for r := range st[a].p50 {
			v = append(v, st[a].p50[r]/st[b].p50[r])
		}
		return medianF(v), v
	}
	m, v := ratio(iNew, iRIE)
	fmt.Printf("this build / RIE, p50 of all: %.2f×; per round: median %.2f× %s (target ≤ 0.7×)\n",
		float64(pct(st[iNew].lat, .5))/float64(pct(st[iRIE].lat, .5)), m, fmtRatios(v))
	if iMain >= 0 {
		m, v := ratio(iMain, iRIE)
		fmt.Printf("main's / RIE, p50 of all: %.2f×; per round: median %.2f× %s\n",
			float64(pct(st[iMain].lat, .5))/float64(pct(st[iRIE].lat, .5)), m, fmtRatios(v))
		m, v = ratio(iNew, iMain)
		won := 0
		for _, x := range v {
			if x < 1 {
				won++
			}
		}
		fmt.Printf("this build / main's, p50 of all: %.2f×; per round: median %.2f× %s, this build faster in %d of %d rounds\n",
			float64(pct(st[iNew].lat, .5))/float64(pct(st[iMain].lat, .5)), m, fmtRatios(v), won, len(v))
		fmt.Printf("Stoke's CPU µs/req this build / main's: server %.0f / %.0f, bootstrap %.0f / %.0f\n",
			medianF(st[iNew].srv), medianF(st[iMain].srv), medianF(st[iNew].appc), medianF(st[iMain].appc))
	}
	fmt.Printf("floor (client + one HTTP hop, no Lambda) / RIE, per round: median %.2f×; the Runtime API exchange alone is BenchmarkInvokeEvent (internal/runtime/lambda)\n",
		func() float64 { m, _ := ratio(iFloor, iRIE); return m }())
	same := fmt.Sprint(s.instancePids("echo")) == fmt.Sprint(pidsBefore[0])
	if mainS != nil {
		same = same && fmt.Sprint(mainS.instancePids("echo")) == fmt.Sprint(pidsBefore[1])
	}
	fmt.Printf("same instance pids before and after (no cold start inside the measurement): %v\n", same)
	return nil
}

func fmtRatios(v []float64) string {
	s := "("
	for i, x := range v {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%.2f", x)
	}
	return s + ")"
}
