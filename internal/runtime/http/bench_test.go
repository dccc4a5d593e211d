package httprt

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The three benchmarks hit the same kind of app with the same client, one
// request at a time: Direct is the floor, ReverseProxy is what a plain
// httputil.ReverseProxy adds, Invoke is what Stoke's http runtime adds.

func benchApp(b *testing.B) *Instance {
	checkNoLeaks(b)
	return start(b, function(b, "hello"))
}

func benchGet(b *testing.B, url string) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
	b.Cleanup(c.CloseIdleConnections)
	get := func() {
		res, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || n != 5 {
			b.Fatalf("status %d, %d bytes", res.StatusCode, n)
		}
	}
	get() // connect outside the timing
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		get()
	}
}

func BenchmarkDirect(b *testing.B) {
	inst := benchApp(b)
	benchGet(b, "http://"+inst.addr+"/")
}

func BenchmarkReverseProxy(b *testing.B) {
	inst := benchApp(b)
	target, _ := url.Parse("http://" + inst.addr)
	srv := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	b.Cleanup(srv.Close)
	benchGet(b, srv.URL+"/")
}

func BenchmarkInvoke(b *testing.B) {
	inst := benchApp(b)
	srv := front(b, inst)
	benchGet(b, srv.URL+"/")
}

// TestReadinessLag measures how long after the app starts listening Start
// reports it ready: the cold-start latency readiness probing adds.
func TestReadinessLag(t *testing.T) {
	checkNoLeaks(t)
	var lags []time.Duration
	for i := range 20 {
		listened := make(chan int64, 1)
		rt := New(Options{
			Function: function(t, "hello"),
			Sandbox:  newStarter(t),
			Logger:   slog.New(slog.DiscardHandler),
			Output: func(_, _, line string) {
				if v, ok := strings.CutPrefix(line, "listening "); ok {
					n, _ := strconv.ParseInt(v, 10, 64)
					listened <- n
				}
			},
		})
		inst, err := rt.Start(context.Background(), "i-lag"+strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		ready := time.Now().UnixNano()
		inst.Stop(context.Background())
		lags = append(lags, time.Duration(ready-<-listened))
	}
	slices.Sort(lags)
	t.Logf("readiness lag over %d starts: min %v, median %v, p90 %v, max %v",
		len(lags), lags[0], lags[len(lags)/2], lags[len(lags)*9/10], lags[len(lags)-1])
	// The goal is ≤ 3 ms; the bound is loose because this 2-core VM is
	// shared, but a fixed 10 ms poll (a median near 5 ms and more) would
	// still trip it often.
	if lags[len(lags)/2] > 15*time.Millisecond {
		t.Errorf("median lag %v, want ≤ 3ms (15ms allowed for a loaded machine)", lags[len(lags)/2])
	}
}
