package lambdart

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// BenchmarkInvokeEvent is the warm event path at concurrency 1: hand-off to
// the waiting /next, aws-lambda-go's handler, /response back.
func BenchmarkInvokeEvent(b *testing.B) {
	checkNoLeaks(b)
	in := start(b, function(b, "echo"), nil)
	ctx := context.Background()
	inv := &runtime.Invocation{Payload: []byte(`{"hello":"world"}`), Deadline: time.Now().Add(time.Hour)}
	b.ReportAllocs()
	i := 0
	cpu := cpuTime()
	for b.Loop() {
		i++
		inv.RequestID = "bench-" + strconv.Itoa(i)
		res, err := in.InvokeEvent(ctx, inv)
		if err != nil || res.FunctionError != "" {
			b.Fatal(err, res)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "stoke-cpu-ns/op")
}

// cpuTime is the CPU this process (Stoke's side of the Runtime API, not the
// bootstrap) has used: on a shared machine wall time includes waiting.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkInvoke is a warm HTTP route end to end: client → loopback
// server → Invoke (2.0 event) → function → HTTP response.
func BenchmarkInvoke(b *testing.B) {
	checkNoLeaks(b)
	srv := front(b, start(b, function(b, "apiv2"), nil))
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
	b.Cleanup(c.CloseIdleConnections)
	get := func() {
		res, err := c.Get(srv.URL + "/bench?q=1")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 201 {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
	get()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		get()
	}
}

// BenchmarkWarmLatency reports the warm latency distribution of both paths
// at concurrency 1 (p50, p90, p99), the numbers to compare with AWS's
// Runtime Interface Emulator (about 965 µs p50 for a warm invoke on this
// machine; the goal is half of it for the HTTP path). A measurement, not a
// test: it asserts nothing about time. Each path has its own instance (and
// sandbox manager), started after the previous one is done.
//
//	go test -run '^$' -bench WarmLatency -benchtime 2000x ./internal/runtime/lambda
func BenchmarkWarmLatency(b *testing.B) {
	b.Run("event", func(b *testing.B) {
		checkNoLeaks(b)
		in := start(b, function(b, "echo"), nil)
		inv := &runtime.Invocation{Payload: []byte(`{"hello":"world"}`), Deadline: time.Now().Add(time.Hour)}
		i := 0
		latencies(b, func() {
			i++
			inv.RequestID = "lat-" + strconv.Itoa(i)
			if _, err := in.InvokeEvent(context.Background(), inv); err != nil {
				b.Fatal(err)
			}
		})
	})
	// The event path's critical path alone: each event goes to a /next
	// that is already waiting (the bootstrap's wrap-up after its previous
	// answer, 202 to next /next, is not timed). With a client in front,
	// that wrap-up runs while the client reads its answer and sends the
	// next request, so this is the floor the Runtime API protocol sets an
	// Invoke at c=1 (BENCHMARKS, "Lambda warm Invoke: where the time goes").
	b.Run("event-next-waiting", func(b *testing.B) {
		checkNoLeaks(b)
		in := start(b, function(b, "echo"), nil)
		inv := &runtime.Invocation{Payload: []byte(`{"hello":"world"}`), Deadline: time.Now().Add(time.Hour)}
		i := 0
		latenciesAfter(b, func() { <-in.Free() }, func() {
			i++
			inv.RequestID = "lat-" + strconv.Itoa(i)
			if _, err := in.InvokeEvent(context.Background(), inv); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("http", func(b *testing.B) {
		checkNoLeaks(b)
		srv := front(b, start(b, function(b, "apiv2"), nil))
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
		b.Cleanup(c.CloseIdleConnections)
		latencies(b, func() {
			res, err := c.Get(srv.URL + "/lat?q=1")
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		})
	})
}

// latencies runs call 100 times unmeasured, then once per iteration, and
// reports the p50, p90 and p99 of the iterations.
func latencies(b *testing.B, call func()) {
	latenciesAfter(b, func() {}, call)
}

// latenciesAfter is latencies with an untimed wait before each call.
func latenciesAfter(b *testing.B, wait, call func()) {
	for range 100 {
		wait()
		call()
	}
	var d []time.Duration
	for b.Loop() {
		b.StopTimer()
		wait()
		b.StartTimer()
		began := time.Now()
		call()
		d = append(d, time.Since(began))
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(d[len(d)*9/10].Microseconds()), "p90-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkPoolWarm is the warm event path through a pool against the same
// path on the instance alone, interleaved with -count: what the pool adds,
// including waiting for the bootstrap's next /next (runtime.Settling)
// before it offers the instance again, which the instance alone waits for
// inside InvokeEvent instead.
//
//	go test -run '^$' -bench PoolWarm -count 6 ./internal/runtime/lambda
func BenchmarkPoolWarm(b *testing.B) {
	checkNoLeaks(b)
	f := function(b, "echo")
	p := pool.New(pool.Options{Runtime: newRuntime(b, f, nil), MaxInstances: 1})
	p.Start()
	b.Cleanup(p.Close)
	ctx := context.Background()
	inv := &runtime.Invocation{Payload: []byte(`{"hello":"world"}`), Deadline: time.Now().Add(time.Hour)}
	i := 0
	once := func(inst runtime.Instance) {
		i++
		inv.RequestID = "bench-" + strconv.Itoa(i)
		res, err := inst.(runtime.EventInstance).InvokeEvent(ctx, inv)
		if err != nil || res.FunctionError != "" {
			b.Fatal(err, res)
		}
	}
	viaPool := func() {
		l, err := p.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		once(l.Instance)
		l.Release()
	}
	viaPool() // the cold start, outside the measurement
	b.Run("pool", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			viaPool()
		}
	})
	b.Run("instance", func(b *testing.B) {
		l, err := p.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Release()
		b.ReportAllocs()
		for b.Loop() {
			once(l.Instance)
		}
	})
}

// BenchmarkColdStartSpares: an isolated cold start, on a stub prepared for
// the function's config, with a Runtime API listener made ahead (Spares)
// against one without, one of each per round in a random order, each
// after 150 ms of quiet (the prepared stub and the listener are made
// again; the CPU is as idle as before a cold start). The result is the
// median Start (listener, hand-off to the stub, the bootstrap's init up to
// its first /next) of each, and the median of the per-round differences,
// in ms. Run as root:
//
//	go test -run '^$' -bench ColdStartSpares -benchtime 100x ./internal/runtime/lambda
func BenchmarkColdStartSpares(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("isolation needs root")
	}
	checkNoLeaks(b)
	discard := slog.New(slog.DiscardHandler)
	m, err := sandbox.NewWithOptions(discard, sandbox.Options{Isolate: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close(context.Background()) })
	if !m.Enforced() {
		sandboxtest.SkipWithoutCgroups(b, "cgroups not usable here")
	}
	code := filepath.Join(b.TempDir(), "code")
	exe := filepath.Join(code, "echo")
	bin, err := os.ReadFile(filepath.Join(binDir, "echo"))
	if err == nil {
		if err = os.Mkdir(code, 0o700); err == nil {
			err = os.WriteFile(exe, bin, 0o700)
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	f := function(b, "echo")
	f.Command, f.Cwd, f.Memory = []string{exe}, code, 3538
	iso := &sandbox.Isolation{UID: 200952, GID: 200952, Code: code}
	sp := NewSpares(4, discard)
	b.Cleanup(sp.Close)
	rts := []*Runtime{
		New(Options{Function: f, Sandbox: m, Isolation: iso, Logger: discard, Spares: sp}),
		New(Options{Function: f, Sandbox: m, Isolation: iso, Logger: discard}),
	}
	ctx := context.Background()
	run := func(rt *Runtime) time.Duration {
		time.Sleep(150 * time.Millisecond)
		t0 := time.Now()
		inst, err := rt.Start(ctx, instanceID())
		d := time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if err := inst.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		return d
	}
	for _, rt := range rts { // the first start of each finds nothing made ahead
		run(rt)
	}
	var ds [2][]time.Duration
	var diff []time.Duration
	for b.Loop() { // the medians are the result, not ns/op
		var round [2]time.Duration
		for _, k := range rand.Perm(2) {
			round[k] = run(rts[k])
			ds[k] = append(ds[k], round[k])
		}
		diff = append(diff, round[0]-round[1])
	}
	med := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2]) / float64(time.Millisecond)
	}
	b.ReportMetric(med(ds[0]), "spare-ms")
	b.ReportMetric(med(ds[1]), "none-ms")
	b.ReportMetric(med(diff), "spare-minus-none-ms")
	b.ReportMetric(0, "ns/op")
}
