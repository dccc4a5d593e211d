package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// lwTarget is one way of running the echo handler in lambda-warm.
type lwTarget struct {
	name   string
	newW   func() worker // a worker with its own connection
	c32    bool          // also measured at concurrency 32
	server func() []int  // the serving process(es): stoke, RIE
	app    func() []int  // the handler's process(es)
}

// benchLambdaWarm: warm latency at concurrency 1 and throughput at
// concurrency 32 of examples/lambda-echo via the Invoke API and via an HTTP
// route, against the same handler as a plain http function (bench/cmd/echohttp)
// through the gateway and that app directly; all in one run, rounds
// interleaved with the order rotated. At concurrency 1 also: the Invoke API
// through aws-sdk-go-v2 (unsigned, and SigV4-signed against a second Stoke
// with auth: sigv4), and AWS's Runtime Interface Emulator when installed.
func benchLambdaWarm(ctx context.Context, e *env) error {
	if *flagLambdaAB {
		return benchLambdaAB(ctx, e)
	}
	echoBin, err := e.buildBin(ctx, "lambda-echo", "./examples/lambda-echo")
	if err != nil {
		return err
	}
	httpBin, err := e.buildBin(ctx, "echohttp", "./bench/cmd/echohttp")
	if err != nil {
		return err
	}
	const n32 = 32
	s, err := e.startStoke(ctx, "lambda-warm", fmt.Sprintf(`region: us-east-1
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
    max_instances: %d
    keep_warm: %d
    idle_timeout: 10m
    event_format: "2.0"
    routes: [/echo, /echo/*]
  echohttp:
    runtime: http
    command: [%s]
    memory: 1769
    timeout: 10s
    concurrency: 1
    max_instances: %d
    keep_warm: %d
    idle_timeout: 10m
    routes: [/echohttp, /echohttp/*]
`, "./lambda-echo", n32, n32, "./echohttp", n32, n32), echoBin, httpBin)
	if err != nil {
		return err
	}
	defer s.stopWith()
	const akid, secret = "AKIDSTOKEBENCH", "stokebench-secret"
	s4, err := e.startStoke(ctx, "lambda-warm-sigv4", fmt.Sprintf(`region: us-east-1
account_id: "000000000000"
invoke_api:
  auth: sigv4
  credentials:
    - access_key_id: %s
      secret_access_key: %s
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
`, akid, secret, "./lambda-echo"), echoBin)
	if err != nil {
		return err
	}
	defer s4.stopWith()

	appPort := freePort()
	app, err := e.start(filepath.Join(e.dir, "echohttp.log"), []string{fmt.Sprintf("PORT=%d", appPort)}, httpBin)
	if err != nil {
		return err
	}
	defer e.stop(app, 0)
	if err := waitListen(ctx, fmt.Sprintf("127.0.0.1:%d", appPort)); err != nil {
		return err
	}

	// AWS's Runtime Interface Emulator, built from its Go module (or -rie):
	// one bootstrap, one request at a time (it fails a second concurrent
	// invoke), so c=1 only.
	var rieURL, rieBase string
	var rie *exec.Cmd
	riePath := *flagRIE
	if riePath == "" {
		if riePath, err = e.buildRIE(ctx); err != nil {
			fmt.Printf("could not build aws-lambda-rie (%v): no same-run RIE rows\n", err)
			riePath = ""
		}
	}
	if riePath != "" {
		var rp int
		var stopRIE func()
		rie, rp, stopRIE, err = e.startRIE(ctx, riePath, echoBin)
		if err != nil {
			return err
		}
		defer stopRIE()
		rieBase = fmt.Sprintf("http://127.0.0.1:%d", rp)
		rieURL = rieBase + "/2015-03-31/functions/function/invocations"
	}

	if err := s.waitInstances(ctx, "echo", n32, 60*time.Second); err != nil {
		return err
	}
	if err := s.waitInstances(ctx, "echohttp", n32, 60*time.Second); err != nil {
		return err
	}
	if err := s4.waitInstances(ctx, "echo", 1, 30*time.Second); err != nil {
		return err
	}

	invokeURL := s.gw + "/2015-03-31/functions/echo/invocations"
	self := []int{os.Getpid()}
	stoke := func() []int { return []int{s.pid} }
	ts := []lwTarget{
		{name: "Invoke API (auth none)", newW: httpWorker("POST", invokeURL, echoEvent), c32: true,
			server: stoke, app: func() []int { return s.instancePids("echo") }},
		{name: "HTTP route → lambda (2.0 event)", newW: httpWorker("GET", s.gw+"/echo/bench?x=1", ""), c32: true,
			server: stoke, app: func() []int { return s.instancePids("echo") }},
		{name: "HTTP route → http function (echohttp)", newW: httpWorker("GET", s.gw+"/echohttp/bench?x=1", ""), c32: true,
			server: stoke, app: func() []int { return s.instancePids("echohttp") }},
		{name: "echohttp direct (baseline)", newW: httpWorker("GET", fmt.Sprintf("http://127.0.0.1:%d/echo/bench?x=1", appPort), ""), c32: true,
			server: func() []int { return nil }, app: func() []int { return []int{app.Process.Pid} }},
		{name: "Invoke API, aws-sdk-go-v2 unsigned", newW: sdkWorker(s.gw, "echo", aws.AnonymousCredentials{}), c32: true,
			server: stoke, app: func() []int { return s.instancePids("echo") }},
		{name: "Invoke API, aws-sdk-go-v2 SigV4 (info)", newW: sdkWorker(s4.gw, "echo", credentials.NewStaticCredentialsProvider(akid, secret, "")),
			server: func() []int { return []int{s4.pid} }, app: func() []int { return s4.instancePids("echo") }},
	}
	const iInvoke, iRoute, iRouteHTTP, iDirect, iSDK = 0, 1, 2, 3, 4
	iRIE, iRIEHTTP := -1, -1
	if rieURL != "" {
		rpid := rie.Process.Pid
		ts = append(ts, lwTarget{name: "AWS RIE, aws-sdk-go-v2 (baseline)", newW: sdkWorker(rieBase, "function", aws.AnonymousCredentials{}),
			server: func() []int { return []int{rpid} }, app: func() []int { return children(rpid) }},
			lwTarget{name: "AWS RIE, POST invocations with net/http (info)", newW: httpWorker("POST", rieURL, echoEvent),
				server: func() []int { return []int{rpid} }, app: func() []int { return children(rpid) }})
		iRIE, iRIEHTTP = len(ts)-2, len(ts)-1
	}

	// Which instances serve now: compared at the end, so a replaced
	// instance (a cold start inside the measurement) is reported.
	pidsBefore := map[string][]int{"echo": s.instancePids("echo"), "echohttp": s.instancePids("echohttp"), "sigv4": s4.instancePids("echo")}
	measureStart := time.Now()

	type stats struct {
		lat                []time.Duration
		rps                []float64
		srv, appc, cli     []float64 // CPU µs per request, per round
		cold               int
		perRoundP50, ratio []float64
	}
	measure := func(conc int, idx []int, rounds, reqs int, d time.Duration) ([]stats, error) {
		ws := make([][]worker, len(ts))
		for _, k := range idx {
			for range conc {
				ws[k] = append(ws[k], ts[k].newW())
			}
			// Warm-up, unmeasured: every connection, every instance.
			if _, err := runLoad(ctx, ws[k], 200*conc, 0); err != nil {
				return nil, fmt.Errorf("%s: warm-up: %w", ts[k].name, err)
			}
		}
		st := make([]stats, len(ts))
		for r := range rounds {
			var directRPS float64
			roundRPS := map[int]float64{}
			for i := range idx {
				k := idx[(i+r)%len(idx)] // rotate the order each round
				sp, ap := ts[k].server(), ts[k].app()
				s0, a0, c0 := cpuOf(sp), cpuOf(ap), cpuOf(self)
				res, err := runLoad(ctx, ws[k], reqs, d)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", ts[k].name, err)
				}
				nreq := float64(len(res.lat))
				st[k].srv = append(st[k].srv, float64(cpuOf(sp)-s0)/1e3/nreq)
				st[k].appc = append(st[k].appc, float64(cpuOf(ap)-a0)/1e3/nreq)
				st[k].cli = append(st[k].cli, float64(cpuOf(self)-c0)/1e3/nreq)
				st[k].lat = append(st[k].lat, res.lat...)
				st[k].rps = append(st[k].rps, res.rps())
				st[k].perRoundP50 = append(st[k].perRoundP50, float64(pct(res.lat, .5)))
				st[k].cold += res.cold
				roundRPS[k] = res.rps()
				if k == iDirect {
					directRPS = res.rps()
				}
			}
			for k, v := range roundRPS {
				st[k].ratio = append(st[k].ratio, v/directRPS)
			}
		}
		return st, nil
	}

	all := make([]int, len(ts))
	for i := range all {
		all[i] = i
	}
	st1, err := measure(1, all, *flagLRounds, *flagLReqs, 0)
	if err != nil {
		return err
	}
	var idx32 []int
	for k, t := range ts {
		if t.c32 {
			idx32 = append(idx32, k)
		}
	}
	d32, err := time.ParseDuration(*flagLDur)
	if err != nil {
		return err
	}
	st32, err := measure(n32, idx32, *flagL32Rounds, 0, d32)
	if err != nil {
		return err
	}

	// Cold starts inside the measurement: replaced instances, and Stoke's
	// records (the Invoke API has no X-Stoke-Cold header).
	time.Sleep(time.Second) // records are written asynchronously
	coldRecs := func(sp *stokeProc, fn string) int {
		var recs []struct {
			Start time.Time
			Cold  bool
		}
		if err := sp.get(fmt.Sprintf("/v1/functions/%s/invocations?cold=1&limit=1000", fn), &recs); err != nil {
			return -1
		}
		n := 0
		for _, r := range recs {
			if r.Cold && r.Start.After(measureStart) {
				n++
			}
		}
		return n
	}
	same := slices.Equal(pidsBefore["echo"], s.instancePids("echo")) && slices.Equal(pidsBefore["echohttp"], s.instancePids("echohttp")) &&
		slices.Equal(pidsBefore["sigv4"], s4.instancePids("echo"))

	med := func(v []float64) float64 { return medianF(v) }
	fmt.Printf("(a) concurrency 1: %d rounds × %d requests per target, interleaved, order rotated; one keep-alive connection per target\n", *flagLRounds, *flagLReqs)
	fmt.Printf("| target | requests | p50 | p99 | p50 − direct | req/s (median of rounds) | CPU µs/req: server + app + client |\n|---|---|---|---|---|---|---|\n")
	dp50 := pct(st1[iDirect].lat, .5)
	for k, t := range ts {
		p50, p99 := pct(st1[k].lat, .5), pct(st1[k].lat, .99)
		fmt.Printf("| %s | %d | %s | %s | %+.0f µs | %.0f | %.0f + %.0f + %.0f |\n", t.name, len(st1[k].lat), us(p50), us(p99),
			float64(p50-dp50)/1e3, med(st1[k].rps), med(st1[k].srv), med(st1[k].appc), med(st1[k].cli))
	}
	fmt.Printf("\n(b) concurrency %d: %d rounds × %s per target, interleaved, order rotated; %d closed-loop workers, one keep-alive connection each\n", n32, *flagL32Rounds, d32, n32)
	fmt.Printf("| target | req/s, median (rounds) | ratio to direct (median per round) | p50 | p99 | CPU µs/req: server + app + client |\n|---|---|---|---|---|---|\n")
	for _, k := range idx32 {
		var rounds []string
		for _, v := range st32[k].rps {
			rounds = append(rounds, fmt.Sprintf("%.0f", v))
		}
		fmt.Printf("| %s | %.0f (%s) | %.2f | %s | %s | %.0f + %.0f + %.0f |\n", ts[k].name, med(st32[k].rps), strings.Join(rounds, ", "),
			med(st32[k].ratio), ms(pct(st32[k].lat, .5)), ms(pct(st32[k].lat, .99)), med(st32[k].srv), med(st32[k].appc), med(st32[k].cli))
	}
	coldHdr := 0
	for k := range ts {
		coldHdr += st1[k].cold
		if k < len(st32) {
			coldHdr += st32[k].cold
		}
	}
	fmt.Printf("\ncold starts during the measurement: X-Stoke-Cold on routes %d; cold records since start: echo %d, echohttp %d, sigv4 echo %d; same instance pids before and after: %v\n",
		coldHdr, coldRecs(s, "echo"), coldRecs(s, "echohttp"), coldRecs(s4, "echo"), same)

	inv := pct(st1[iInvoke].lat, .5)
	rh := pct(st1[iRouteHTTP].lat, .5)
	fmt.Printf("Invoke API − http function via the gateway, p50 at c=1: %+.0f µs; HTTP route to lambda − http function: %+.0f µs\n",
		float64(inv-rh)/1e3, float64(pct(st1[iRoute].lat, .5)-rh)/1e3)
	if iRIE >= 0 {
		// The same client, aws-sdk-go-v2's Lambda client, against both.
		sdk, r50 := pct(st1[iSDK].lat, .5), pct(st1[iRIE].lat, .5)
		limit := time.Duration(0.7 * float64(r50))
		verdict := fmt.Sprintf("MET (%s under)", us(limit-sdk))
		if sdk > limit {
			verdict = fmt.Sprintf("MISSED by %s", us(sdk-limit))
		}
		fmt.Printf("target: warm Invoke p50 ≤ 0.7× AWS's emulator with the same client (aws-sdk-go-v2), c=1: RIE %s → ≤ %s; Stoke %s (%.2f×) → %s\n",
			us(r50), us(limit), us(sdk), float64(sdk)/float64(r50), verdict)
		fmt.Printf("with a net/http client instead: Stoke %s, RIE %s (%.2f×)\n", us(inv), us(pct(st1[iRIEHTTP].lat, .5)),
			float64(inv)/float64(pct(st1[iRIEHTTP].lat, .5)))
		if len(st32) > iSDK && len(st32[iSDK].lat) > 0 {
			fmt.Printf("at concurrency %d (the emulator serves one at a time): Stoke's aws-sdk-go-v2 p50 %s, %.0f req/s; RIE at c=1: %.0f req/s\n",
				n32, ms(pct(st32[iSDK].lat, .5)), medianF(st32[iSDK].rps), medianF(st1[iRIE].rps))
		}
	}
	return nil
}

// rieModule is AWS's Runtime Interface Emulator as the module proxy serves
// it (the version /work/.library lists as known to work).
const rieModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// buildRIE builds aws-lambda-rie from its Go module into the temp dir.
func (e *env) buildRIE(ctx context.Context) (string, error) {
	c := exec.CommandContext(ctx, goBin(), "install", rieModule)
	c.Dir = e.dir // outside the repository's module
	c.Env = append(os.Environ(), "GOBIN="+e.dir, "GOFLAGS=")
	if out, err := c.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %v\n%s", rieModule, err, out)
	}
	return filepath.Join(e.dir, "aws-lambda-rie"), nil
}

// httpWorker makes workers sending method url (with body as JSON, if any)
// on their own keep-alive connection; a non-200 or a function error fails.
func httpWorker(method, url, body string) func() worker {
	return func() worker {
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}, Timeout: 10 * time.Second}
		return func(ctx context.Context) (bool, error) {
			var rd io.Reader
			if body != "" {
				rd = strings.NewReader(body)
			}
			req, err := http.NewRequestWithContext(ctx, method, url, rd)
			if err != nil {
				return false, err
			}
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := c.Do(req)
			if err != nil {
				return false, err
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return false, err
			}
			if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "" {
				return false, fmt.Errorf("%s %s: %s %s: %s", method, url, resp.Status, resp.Header.Get("X-Amz-Function-Error"), tail(string(b), 300))
			}
			return resp.Header.Get("X-Stoke-Cold") == "true", nil
		}
	}
}

// sdkWorker makes workers invoking function fn with an aws-sdk-go-v2
// Lambda client (its own HTTP client each), pointed at endpoint.
func sdkWorker(endpoint, fn string, creds aws.CredentialsProvider) func() worker {
	return func() worker {
		cl := lambda.New(lambda.Options{
			Region:           "us-east-1",
			BaseEndpoint:     aws.String(endpoint),
			Credentials:      creds,
			RetryMaxAttempts: 1,
		})
		payload := []byte(echoEvent)
		return func(ctx context.Context) (bool, error) {
			out, err := cl.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: payload})
			if err != nil {
				return false, err
			}
			if out.FunctionError != nil {
				return false, errors.New("function error: " + *out.FunctionError + ": " + string(out.Payload))
			}
			return false, nil
		}
	}
}

func procExists(pid int) bool { _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); return err == nil }

func killPid(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}

// startRIE runs AWS's Runtime Interface Emulator with the bootstrap
// echoBin (1769 MB, as Stoke's function) on a free port, and waits until it
// listens. stop ends it and kills a bootstrap that outlived it.
func (e *env) startRIE(ctx context.Context, riePath, echoBin string) (rie *exec.Cmd, port int, stop func(), err error) {
	rp, ap := freePort(), freePort()
	rie, err = e.start(filepath.Join(e.dir, "rie.log"), []string{
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1769", "AWS_LAMBDA_FUNCTION_TIMEOUT=10", "AWS_REGION=us-east-1",
	}, riePath, "--log-level", "error",
		"--runtime-interface-emulator-address", fmt.Sprintf("127.0.0.1:%d", rp),
		"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", ap), echoBin)
	if err != nil {
		return nil, 0, nil, err
	}
	stop = func() {
		kids := children(rie.Process.Pid)
		e.stop(rie, 5*time.Second)
		for _, k := range kids {
			if procExists(k) {
				e.leak(fmt.Sprintf("RIE's bootstrap %d (%s) survived RIE; killed", k, cmdline(k)))
				killPid(k)
			}
		}
	}
	if err := waitListen(ctx, fmt.Sprintf("127.0.0.1:%d", rp)); err != nil {
		stop()
		return nil, 0, nil, err
	}
	return rie, rp, stop, nil
}
