package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// benchCold: a request through the gateway to a function with no instance
// (request sent on a kept-alive client connection → response read), against
// exec of the same binary → first 200 by polling it in a tight loop.
//
// "No instance" is had with idle_timeout: 1ms and max_instances: 1: the pool
// reaps the instance at its next 10ms tick; before every start we poll the
// admin API until the instance list is empty AND no hello process is alive
// (the instance leaves the list before its process has exited), then sleep
// the same settle time before either kind of start.
func benchCold(ctx context.Context, e *env) error {
	mems := []int{3538, 128}
	var cfg strings.Builder
	cfg.WriteString("functions:\n")
	for _, m := range mems {
		fmt.Fprintf(&cfg, `  c%d:
    runtime: http
    command: [%s]
    memory: %d
    concurrency: 1
    max_instances: 1
    keep_warm: 0
    idle_timeout: 1ms
    timeout: 10s
    routes: [/c%d]
    env: {GREETING: hi}
`, m, "./hello", m, m)
	}
	s, err := e.startStoke(ctx, "cold", cfg.String(), e.hello)
	if err != nil {
		return err
	}
	defer s.stop()
	// The same functions on a Stoke that does not isolate them: what
	// isolation costs, in the same run (a no-op as non-root, where neither
	// isolates).
	plain, err := e.startStoke(ctx, "cold-plain", "sandbox: {isolation: false}\n"+cfg.String(), e.hello)
	if err != nil {
		return err
	}
	defer plain.stop()
	// With -main-bin, main's Stoke (isolated) in the same run: what this
	// build changes.
	mainS, err := e.startMainStoke(ctx, "cold-main", cfg.String(), e.hello)
	if err != nil {
		return err
	}
	servers := []*stokeProc{s, plain}
	if mainS != nil {
		defer mainS.stop()
		servers = append(servers, mainS)
	}

	client := &http.Client{Timeout: 20 * time.Second}
	const settle = 20 * time.Millisecond
	// Stoke keeps idle sandbox stubs and refills them ~50 ms after one is
	// used; a start measured while a refill runs shares the CPUs with it.
	// Wait for the pool to be full before every start (Stoke or direct).
	stubs := make([]int, len(servers))
	for i, srv := range servers {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			stubs[i] = max(stubs[i], srv.idleStubs())
			if stubs[i] >= 2 {
				break
			}
		}
	}
	waitIdle := func() error {
		for i, srv := range servers {
			if err := srv.waitIdle(ctx, 10*time.Second); err != nil {
				return err
			}
			// As many as it has held: prepared stubs too, once a config started.
			for deadline := time.Now().Add(10 * time.Second); srv.idleStubs() < max(stubs[i], srv.mostStubs); time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					return fmt.Errorf("sandbox stubs did not refill to %d", stubs[i])
				}
			}
		}
		return nil
	}
	type variant struct {
		name string
		run  func() (time.Duration, error)
	}
	var notCold, errs int
	stokeStart := func(s *stokeProc, mem int) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			if err := waitIdle(); err != nil {
				return 0, err
			}
			time.Sleep(settle)
			t0 := time.Now()
			resp, err := client.Get(fmt.Sprintf("%s/c%d", s.gw, mem))
			if err != nil {
				return 0, err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			d := time.Since(t0)
			if err != nil {
				return 0, err
			}
			if resp.StatusCode != 200 {
				return 0, fmt.Errorf("status %s", resp.Status)
			}
			if resp.Header.Get("X-Stoke-Cold") != "true" {
				notCold++
				return 0, errNotCold
			}
			return d, nil
		}
	}
	cg, err := newCgThread()
	if err != nil {
		return err
	}
	if cg != nil {
		defer cg.close()
	}
	direct := func(cg *cgThread) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			if err := waitIdle(); err != nil {
				return 0, err
			}
			time.Sleep(settle)
			return directStart(ctx, e, cg)
		}
	}
	vs := []variant{{"stoke 3538 MB, isolated", stokeStart(s, 3538)}, {"direct", direct(nil)},
		{"stoke 3538 MB, not isolated", stokeStart(plain, 3538)}, {"stoke 128 MB, isolated", stokeStart(s, 128)}}
	kMain, kBeside := -1, -1
	if mainS != nil {
		kMain = len(vs)
		vs = append(vs, variant{"main's stoke 3538 MB, isolated", stokeStart(mainS, 3538)})
	}
	if cg != nil {
		kBeside = len(vs)
		vs = append(vs, variant{"direct, forked in a cpu cgroup beside Stoke's (stoke/stokebench-<pid>)", direct(cg)})
	}
	res := make([][]time.Duration, len(vs))
	rounds := paired{}
	// Warm the page cache and both code paths once, unmeasured.
	for _, v := range vs {
		if _, err := v.run(); err != nil && err != errNotCold {
			return fmt.Errorf("%s: %w", v.name, err)
		}
	}
	notCold = 0
	for i := 0; i < *flagN; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A new order every round: a start pays for what the one before
		// it left behind (an instance's cgroup removal, the kernel's
		// deferred work), so no variant may always follow the same one.
		order := rand.Perm(len(vs))
		for _, k := range order {
			d, err := vs[k].run()
			if err == errNotCold {
				continue
			}
			if err != nil {
				errs++
				fmt.Fprintf(os.Stderr, "cold %s: %v\n", vs[k].name, err)
				if errs > 10 {
					return fmt.Errorf("too many errors")
				}
				continue
			}
			res[k] = append(res[k], d)
			rounds.add(i, k, d)
		}
	}
	d50, d99 := pct(res[1], .5), pct(res[1], .99)
	fmt.Printf("| variant | starts | p50 | p99 | p50 − direct | p99 − direct |\n|---|---|---|---|---|---|\n")
	for k, v := range vs {
		p50, p99 := pct(res[k], .5), pct(res[k], .99)
		fmt.Printf("| %s | %d | %s | %s | %+.2f ms | %+.2f ms |\n", v.name, len(res[k]), ms(p50), ms(p99),
			float64(p50-d50)/1e6, float64(p99-d99)/1e6)
	}
	fmt.Printf("errors: %d, answered warm instead of cold (excluded): %d\n", errs, notCold)
	// Stoke's own view of its cold starts (records are written asynchronously).
	time.Sleep(time.Second)
	for _, m := range mems {
		var recs []struct{ InitMS, QueueMS, DurationMS float64 }
		if err := s.get(fmt.Sprintf("/v1/functions/c%d/invocations?cold=1&limit=1000", m), &recs); err != nil {
			return err
		}
		var in, q, du []float64
		for _, r := range recs {
			in, q, du = append(in, r.InitMS), append(q, r.QueueMS), append(du, r.DurationMS)
		}
		fmt.Printf("stoke's records, c%d: %d cold; median InitMS %.2f, QueueMS %.2f, DurationMS %.2f\n", m, len(recs), medianF(in), medianF(q), medianF(du))
	}
	add := pct(res[0], .5) - d50
	verdict := "MET"
	if add > 3*time.Millisecond {
		verdict = fmt.Sprintf("MISSED by %.2f ms", float64(add-3*time.Millisecond)/1e6)
	}
	fmt.Printf("target: stoke 3538 MB (isolated) adds ≤ 3 ms at p50: adds %.2f ms → %s\n", float64(add)/1e6, verdict)
	printComparisons(res, rounds, 2, 1, kMain, kBeside)
	return nil
}

var errNotCold = fmt.Errorf("answered by a warm instance")

// directStart execs hello and polls GET / as fast as it can until a 200.
// With cg, hello is forked on cg's thread, in its cgroup.
func directStart(ctx context.Context, e *env, cg *cgThread) (time.Duration, error) {
	port := freePort()
	url := fmt.Sprintf("http://127.0.0.1:%d/c", port)
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	cmd := exec.Command(e.hello)
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port), "GREETING=hi")
	t0, err := cg.start(cmd)
	if err != nil {
		return 0, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for {
		resp, err := c.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return time.Since(t0), nil
			}
		}
		if time.Since(t0) > 5*time.Second || ctx.Err() != nil {
			return 0, fmt.Errorf("direct start: no 200 after 5s (%v)", err)
		}
	}
}
