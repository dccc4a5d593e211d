package lambdart

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/runtime"
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
	for b.Loop() {
		i++
		inv.RequestID = "bench-" + strconv.Itoa(i)
		res, err := in.InvokeEvent(ctx, inv)
		if err != nil || res.FunctionError != "" {
			b.Fatal(err, res)
		}
	}
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

// TestWarmLatency reports the warm latency distribution of both paths at
// concurrency 1, the numbers to compare with AWS's Runtime Interface
// Emulator (about 965 µs p50 for a warm invoke on this machine).
func TestWarmLatency(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a measurement, meaningless under -race")
	}
	checkNoLeaks(t)
	const n = 2000
	pct := func(d []time.Duration) string {
		slices.Sort(d)
		return "p50 " + d[len(d)/2].String() + ", p90 " + d[len(d)*9/10].String() + ", p99 " + d[len(d)*99/100].String()
	}

	in := start(t, function(t, "echo"), nil)
	inv := &runtime.Invocation{Payload: []byte(`{"hello":"world"}`), Deadline: time.Now().Add(time.Hour)}
	var ev []time.Duration
	for i := range n + 100 {
		inv.RequestID = "lat-" + strconv.Itoa(i)
		began := time.Now()
		if _, err := in.InvokeEvent(context.Background(), inv); err != nil {
			t.Fatal(err)
		}
		if i >= 100 { // warm-up
			ev = append(ev, time.Since(began))
		}
	}

	srv := front(t, start(t, function(t, "apiv2"), nil))
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
	defer c.CloseIdleConnections()
	var hp []time.Duration
	for i := range n + 100 {
		began := time.Now()
		res, err := c.Get(srv.URL + "/lat?q=1")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if i >= 100 {
			hp = append(hp, time.Since(began))
		}
	}
	t.Logf("InvokeEvent: %s", pct(ev))
	t.Logf("HTTP Invoke (2.0 event, end to end): %s", pct(hp))
	p50 := hp[len(hp)/2] // sorted by pct
	// Target: half the emulator's ~965 µs; the bound is loose for a shared VM.
	if p50 > 2*time.Millisecond {
		t.Errorf("HTTP Invoke p50 %v, want ≤ 480µs (2ms allowed for a loaded machine)", p50)
	}
}
