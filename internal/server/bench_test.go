package server_test

import (
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// BenchmarkWarmHTTP is one warm GET through a real server: listener,
// gateway, the http runtime's forwarder, the app (this test binary, in its
// sandbox, printing a log line per request) on loopback, the record, its
// START/END/REPORT lines and the app's line written to SQLite, metrics.
// The client is a keep-alive net/http client in this process. cpu-ns/op is
// this process's CPU per request (Stoke's and the client's, not the
// app's), the same client on both sides of an A/B; allocs/op likewise
// (docs/BENCHMARKS.md, issue 14).
func BenchmarkWarmHTTP(b *testing.B) {
	sandboxtest.CheckNoLeaks(b)
	dir := b.TempDir()
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: "127.0.0.1:0"}
functions:
  w:
    runtime: http
    command: [%q]
    memory: 1769
    keep_warm: 1
    idle_timeout: 10m
    routes: [/w]
    env: {STOKE_SRV_APP: "1"}
`, sandboxtest.InDir(b, dir))
	s := serve(b, dir, yaml)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	url := "http://" + s.GatewayAddr() + "/w"
	get := func() {
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET /w: %d %v", resp.StatusCode, err)
		}
	}
	for range 200 { // the cold start, then warm connections
		get()
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		get()
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is this process's CPU (user + system): on a shared machine a
// benchmark's wall time includes waiting for the CPUs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWarmHTTPParallel is BenchmarkWarmHTTP at 64 requests at once on
// 64 kept-alive connections, one instance with concurrency 64 (as
// stokebench warm's c=64 rows): cpu-ns/op is this process's CPU per
// request, the clients' included.
func BenchmarkWarmHTTPParallel(b *testing.B) {
	warmParallel(b, `    memory: 3538
    concurrency: 64
    max_instances: 1
    keep_warm: 1
`)
}

// BenchmarkWarmHTTPParallelLambda is BenchmarkWarmHTTPParallel in Lambda's
// model (stokebench warm's "Lambda model" row): concurrency 1, up to 50
// instances, so 64 clients keep every instance busy and 14 requests
// waiting, and each release hands its instance to a waiter.
func BenchmarkWarmHTTPParallelLambda(b *testing.B) {
	warmParallel(b, `    memory: 1769
    concurrency: 1
    max_instances: 50
`)
}

// BenchmarkWarmLambdaParallel is BenchmarkWarmHTTPParallelLambda with the
// lambda runtime behind the route (this binary's minimal bootstrap,
// trace_test.go): a released instance is free again only at its
// bootstrap's next /next, which hands it to a waiter (runtime.Settling).
func BenchmarkWarmLambdaParallel(b *testing.B) {
	warmParallelOf(b, "lambda", `{STOKE_TRACE_APP: lambda}`, `    memory: 1769
    concurrency: 1
    max_instances: 50
`)
}

func warmParallel(b *testing.B, sizing string) {
	warmParallelOf(b, "http", `{STOKE_SRV_APP: "1"}`, sizing)
}

func warmParallelOf(b *testing.B, kind, env, sizing string) {
	sandboxtest.CheckNoLeaks(b)
	dir := b.TempDir()
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: "127.0.0.1:0"}
functions:
  w:
    runtime: %s
    command: [%q]
%s    idle_timeout: 10m
    routes: [/w]
    env: %s
`, kind, sandboxtest.InDir(b, dir), sizing, env)
	s := serve(b, dir, yaml)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	url := "http://" + s.GatewayAddr() + "/w"
	get := func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET /w: %d", resp.StatusCode)
		}
		return err
	}
	for range 200 {
		if err := get(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.SetParallelism(32) // × GOMAXPROCS (2 here): 64 clients
	// The first parallel round starts the instances (Lambda's model): the
	// timed loop measures them warm.
	warm := make(chan error, 64)
	for range 64 {
		go func() {
			var err error
			for range 20 {
				if err = get(); err != nil {
					break
				}
			}
			warm <- err
		}()
	}
	for range 64 {
		if err := <-warm; err != nil {
			b.Fatal(err)
		}
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := get(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}
