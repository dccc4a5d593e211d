package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// benchLambdaCold: a cold start of examples/lambda-echo through the Invoke
// API (request sent on a kept-alive connection → response read; no instance
// running) against the bootstrap's own start, measured by exec'ing it with
// AWS_LAMBDA_RUNTIME_API pointing at a minimal Runtime API in this process:
// exec → its first GET /next (its init), and exec → its /response to the
// event that /next answered with (init plus one event round trip: the same
// work Stoke's cold start has to do, without Stoke).
//
// Cold is forced as in `cold`: max_instances 1, idle_timeout 1ms, keep_warm
// 0; before every start (either kind) the admin API lists no instance, no
// lambda-echo process is alive, and Stoke holds its idle sandbox stubs again
// (the one a start uses is replaced ~50 ms later; that must not overlap the
// next start); then 20 ms of quiet. Every Stoke start is checked cold in
// Stoke's own records (by request id).
//
// In the same run, interleaved (a random order every round): the same
// function on a Stoke with `sandbox: {isolation: false}` (what isolation
// costs) and, with -main-bin, on main's Stoke (what this build changes).
func benchLambdaCold(ctx context.Context, e *env) error {
	echoBin, err := e.buildBin(ctx, "lambda-echo", "./examples/lambda-echo")
	if err != nil {
		return err
	}
	mems := []int{3538, 1769}
	var cfg strings.Builder
	cfg.WriteString("region: us-east-1\naccount_id: \"000000000000\"\ninvoke_api:\n  auth: none\nfunctions:\n")
	for _, m := range mems {
		fmt.Fprintf(&cfg, `  c%d:
    runtime: lambda
    command: [%s]
    memory: %d
    timeout: 10s
    concurrency: 1
    max_instances: 1
    keep_warm: 0
    idle_timeout: 1ms
`, m, "./lambda-echo", m)
	}
	s, err := e.startStoke(ctx, "lambda-cold", cfg.String(), echoBin)
	if err != nil {
		return err
	}
	defer s.stopWith()
	// The same functions not isolated (what isolation costs), and with
	// -main-bin on main's Stoke (what this build changes), in the same run.
	plain, err := e.startStoke(ctx, "lambda-cold-plain", "sandbox: {isolation: false}\n"+cfg.String(), echoBin)
	if err != nil {
		return err
	}
	defer plain.stopWith()
	mainS, err := e.startMainStoke(ctx, "lambda-cold-main", cfg.String(), echoBin)
	if err != nil {
		return err
	}
	servers := []*stokeProc{s, plain}
	if mainS != nil {
		defer mainS.stopWith()
		servers = append(servers, mainS)
	}

	// How many idle stubs each Stoke keeps: wait for the pools to fill.
	stubs := make([]int, len(servers))
	for i, srv := range servers {
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			stubs[i] = max(stubs[i], srv.idleStubs())
			if stubs[i] >= 2 {
				break
			}
		}
	}
	fmt.Printf("Stoke keeps %v idle sandbox stubs\n", stubs)

	rapi, err := newRuntimeStub()
	if err != nil {
		return err
	}
	defer rapi.close()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 20 * time.Second}
	const settle = 20 * time.Millisecond
	quiet := func() error {
		for i, srv := range servers {
			if err := srv.waitQuiet(ctx, 10*time.Second, stubs[i], "lambda-echo"); err != nil {
				return err
			}
		}
		time.Sleep(settle)
		return nil
	}
	reqIDs := map[int][]string{}
	stokeStart := func(s *stokeProc, mem int) func() (time.Duration, time.Duration, error) {
		url := fmt.Sprintf("%s/2015-03-31/functions/c%d/invocations", s.gw, mem)
		return func() (time.Duration, time.Duration, error) {
			if err := quiet(); err != nil {
				return 0, 0, err
			}
			t0 := time.Now()
			resp, err := client.Post(url, "application/json", strings.NewReader(echoEvent))
			if err != nil {
				return 0, 0, err
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			d := time.Since(t0)
			if err != nil {
				return 0, 0, err
			}
			if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "" {
				return 0, 0, fmt.Errorf("%s %s: %s", resp.Status, resp.Header.Get("X-Amz-Function-Error"), tail(string(b), 300))
			}
			if s == servers[0] {
				reqIDs[mem] = append(reqIDs[mem], resp.Header.Get("X-Amzn-Requestid"))
			}
			return d, 0, nil
		}
	}
	cg, err := newCgThread()
	if err != nil {
		return err
	}
	if cg != nil {
		defer cg.close()
	}
	direct := func(cg *cgThread) func() (time.Duration, time.Duration, error) {
		return func() (time.Duration, time.Duration, error) {
			if err := quiet(); err != nil {
				return 0, 0, err
			}
			return rapi.run(ctx, e, echoBin, cg)
		}
	}
	type variant struct {
		name string
		run  func() (time.Duration, time.Duration, error)
	}
	vs := []variant{{"stoke 3538", stokeStart(s, 3538)}, {"direct", direct(nil)}, {"stoke 1769", stokeStart(s, 1769)},
		{"stoke 3538 not isolated", stokeStart(plain, 3538)}}
	kMain, kBeside := -1, -1
	if mainS != nil {
		kMain = len(vs)
		vs = append(vs, variant{"main's stoke 3538", stokeStart(mainS, 3538)})
	}
	if cg != nil {
		kBeside = len(vs)
		vs = append(vs, variant{"direct beside Stoke's instances", direct(cg)})
	}
	// Warm the page cache and every path once, unmeasured.
	for _, v := range vs {
		if _, _, err := v.run(); err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
	}
	for _, m := range mems {
		reqIDs[m] = nil
	}
	res := make([][]time.Duration, len(vs))
	rounds := paired{}
	var next []time.Duration // direct: exec → first /next
	errs := 0
	for i := 0; i < *flagN; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A new order every round: a start pays for what the one before
		// it left behind (an instance's cgroup removal, the kernel's
		// deferred work), so no variant may always follow the same one.
		order := rand.Perm(len(vs))
		for _, k := range order {
			d, dn, err := vs[k].run()
			if err != nil {
				errs++
				fmt.Fprintf(os.Stderr, "lambda-cold %s: %v\n", vs[k].name, err)
				if errs > 10 {
					return fmt.Errorf("too many errors")
				}
				continue
			}
			res[k] = append(res[k], d)
			rounds.add(i, k, d)
			if dn > 0 && k == 1 {
				next = append(next, dn)
			}
		}
	}

	// Stoke's own view, and the check that every measured start was cold.
	time.Sleep(time.Second)
	type rec struct {
		RequestID                   string
		Cold                        bool
		InitMS, QueueMS, DurationMS float64
	}
	notCold := 0
	initMS := map[int][3]float64{}
	for _, m := range mems {
		var recs []rec
		if err := s.get(fmt.Sprintf("/v1/functions/c%d/invocations?limit=1000", m), &recs); err != nil {
			return err
		}
		byID := map[string]rec{}
		for _, r := range recs {
			byID[r.RequestID] = r
		}
		var in, q, du []float64
		for _, id := range reqIDs[m] {
			r, ok := byID[id]
			if !ok || !r.Cold {
				notCold++
				continue
			}
			in, q, du = append(in, r.InitMS), append(q, r.QueueMS), append(du, r.DurationMS)
		}
		initMS[m] = [3]float64{medianF(in), medianF(q), medianF(du)}
	}

	dn50, dn99 := pct(next, .5), pct(next, .99)
	dr50, dr99 := pct(res[1], .5), pct(res[1], .99)
	fmt.Printf("| variant | starts | p50 | p99 | p50 − exec→/response | p99 − exec→/response | p50 − exec→/next |\n|---|---|---|---|---|---|---|\n")
	fmt.Printf("| bootstrap direct: exec → first /next (its init) | %d | %s | %s | %+.2f ms | %+.2f ms | — |\n", len(next), ms(dn50), ms(dn99),
		float64(dn50-dr50)/1e6, float64(dn99-dr99)/1e6)
	fmt.Printf("| bootstrap direct: exec → first /response (baseline) | %d | %s | %s | — | — | %+.2f ms |\n", len(res[1]), ms(dr50), ms(dr99), float64(dr50-dn50)/1e6)
	if kBeside >= 0 {
		p50, p99 := pct(res[kBeside], .5), pct(res[kBeside], .99)
		fmt.Printf("| bootstrap direct, forked in a cpu cgroup beside Stoke's (stoke/stokebench-<pid>): exec → first /response | %d | %s | %s | %+.2f ms | %+.2f ms | — |\n",
			len(res[kBeside]), ms(p50), ms(p99), float64(p50-dr50)/1e6, float64(p99-dr99)/1e6)
	}
	for k := range vs {
		if k == 1 || k == kBeside {
			continue
		}
		p50, p99 := pct(res[k], .5), pct(res[k], .99)
		fmt.Printf("| %s: Invoke API, request → response | %d | %s | %s | %+.2f ms | %+.2f ms | %+.2f ms |\n", vs[k].name, len(res[k]), ms(p50), ms(p99),
			float64(p50-dr50)/1e6, float64(p99-dr99)/1e6, float64(p50-dn50)/1e6)
	}
	fmt.Printf("errors: %d; measured Stoke starts not cold in Stoke's records: %d\n", errs, notCold)
	for _, m := range mems {
		v := initMS[m]
		fmt.Printf("stoke's records, c%d: median InitMS %.2f, QueueMS %.2f, DurationMS %.2f\n", m, v[0], v[1], v[2])
	}
	add := pct(res[0], .5) - dr50
	verdict := "MET"
	if add > 3*time.Millisecond {
		verdict = fmt.Sprintf("MISSED by %.2f ms", float64(add-3*time.Millisecond)/1e6)
	} else {
		verdict = fmt.Sprintf("MET (%.2f ms to spare)", float64(3*time.Millisecond-add)/1e6)
	}
	fmt.Printf("target: cold Invoke (3538 MB) adds ≤ 3 ms p50 to the bootstrap's exec → first /response: adds %.2f ms → %s (vs exec → first /next: %+.2f ms)\n",
		float64(add)/1e6, verdict, float64(pct(res[0], .5)-dn50)/1e6)
	printComparisons(res, rounds, 3, 1, kMain, kBeside)
	if notCold > 0 {
		return fmt.Errorf("%d measured starts were not cold", notCold)
	}
	return nil
}

// runtimeStub is a minimal Lambda Runtime API (2018-06-01) for one bootstrap
// at a time: the first GET /next of a run is answered at once with
// echoEvent; the bootstrap's /response ends the run; later /next polls hang
// until the bootstrap is killed.
type runtimeStub struct {
	ln  net.Listener
	srv *http.Server

	mu  sync.Mutex
	cur *stubRun
}

type stubRun struct {
	id     string
	served bool
	next   chan time.Time
	done   chan error // nil: /response; else /error
	resp   time.Time
}

func newRuntimeStub() (*runtimeStub, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rs := &runtimeStub{ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", rs.handleNext)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		t := time.Now()
		w.WriteHeader(http.StatusAccepted)
		rs.finish(r.PathValue("id"), t, nil)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		rs.finish(r.PathValue("id"), time.Now(), errors.New("function error: "+string(b)))
	})
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		rs.finish("", time.Now(), errors.New("init error: "+string(b)))
	})
	rs.srv = &http.Server{Handler: mux}
	go rs.srv.Serve(ln)
	return rs, nil
}

func (rs *runtimeStub) handleNext(w http.ResponseWriter, r *http.Request) {
	t := time.Now()
	rs.mu.Lock()
	run := rs.cur
	first := run != nil && !run.served
	if first {
		run.served = true
	}
	rs.mu.Unlock()
	if !first {
		<-r.Context().Done() // long poll until the bootstrap goes away
		return
	}
	run.next <- t
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", run.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(10*time.Second).UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:direct")
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0")
	w.Write([]byte(echoEvent))
}

func (rs *runtimeStub) finish(id string, t time.Time, err error) {
	rs.mu.Lock()
	run := rs.cur
	rs.mu.Unlock()
	if run == nil || (id != "" && id != run.id) {
		return
	}
	run.resp = t
	select {
	case run.done <- err:
	default:
	}
}

var directRuns int

// run execs the bootstrap with the Runtime API of rs and Lambda's
// environment, and returns exec → /response and exec → first /next.
// With cg, the bootstrap is forked on cg's thread, in its cgroup.
func (rs *runtimeStub) run(ctx context.Context, e *env, bin string, cg *cgThread) (time.Duration, time.Duration, error) {
	directRuns++
	run := &stubRun{id: fmt.Sprintf("direct-%d", directRuns), next: make(chan time.Time, 1), done: make(chan error, 1)}
	rs.mu.Lock()
	rs.cur = run
	rs.mu.Unlock()
	defer func() { rs.mu.Lock(); rs.cur = nil; rs.mu.Unlock() }()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"AWS_LAMBDA_RUNTIME_API="+rs.ln.Addr().String(),
		"AWS_LAMBDA_FUNCTION_NAME=direct", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=3538",
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1", "_HANDLER=lambda-echo", "TZ=:UTC")
	t0, err := cg.start(cmd)
	if err != nil {
		return 0, 0, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var tn time.Time
	timeout := time.After(5 * time.Second)
	select {
	case tn = <-run.next:
	case <-timeout:
		return 0, 0, errors.New("direct: no /next within 5s")
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	select {
	case err := <-run.done:
		if err != nil {
			return 0, 0, err
		}
	case <-timeout:
		return 0, 0, errors.New("direct: no /response within 5s")
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	return run.resp.Sub(t0), tn.Sub(t0), nil
}

func (rs *runtimeStub) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rs.srv.Shutdown(ctx)
	rs.srv.Close()
}
