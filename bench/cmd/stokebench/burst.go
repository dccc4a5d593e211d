package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// benchBurst: 200 concurrent requests at once on a function with no instance
// and max_instances: 50 (concurrency 1). Every client has its own connection,
// opened before the burst (a request to a path no function serves), so the
// burst measures Stoke, not 200 TCP handshakes. gateway.queue_size is 1000:
// with the default 100, the 150 requests that must wait for one of the 50
// instances would exceed the queue and 50 of them would get 429 by design.
func benchBurst(ctx context.Context, e *env) error {
	const conc = 200
	mems := []int{128, 1769}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "gateway:\n  queue_size: %d\nfunctions:\n", *flagQueue)
	for _, m := range mems {
		fmt.Fprintf(&cfg, `  b%d:
    runtime: http
    command: [%s]
    memory: %d
    concurrency: 1
    max_instances: 50
    keep_warm: 0
    idle_timeout: 300ms
    timeout: 30s
    routes: [/b%d]
    env: {GREETING: hi}
`, m, "./hello", m, m)
	}
	s, err := e.startStoke(ctx, "burst", cfg.String(), e.hello)
	if err != nil {
		return err
	}
	defer s.stop()

	type round struct {
		lat                   []time.Duration
		cold, errs, instances int
		statuses              map[int]int
		wall                  time.Duration
	}
	res := map[int][]round{}
	clients := make([]*http.Client, conc)
	for i := range clients {
		clients[i] = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 60 * time.Second}
	}
	for r := 0; r < *flagBurst; r++ {
		for _, m := range mems {
			if err := s.waitIdle(ctx, 30*time.Second); err != nil {
				return err
			}
			time.Sleep(100 * time.Millisecond)
			// Open every connection first.
			var wg sync.WaitGroup
			for i := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if resp, err := clients[i].Get(s.gw + "/no-such-route"); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}()
			}
			wg.Wait()
			rd := round{statuses: map[int]int{}}
			var mu sync.Mutex
			gate := make(chan struct{})
			for i := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-gate
					t0 := time.Now()
					resp, err := clients[i].Get(fmt.Sprintf("%s/b%d", s.gw, m))
					var body []byte
					if err == nil {
						body, _ = io.ReadAll(resp.Body)
						resp.Body.Close()
					}
					d := time.Since(t0)
					mu.Lock()
					defer mu.Unlock()
					rd.lat = append(rd.lat, d)
					if err != nil {
						rd.errs++
						rd.statuses[-1]++
						return
					}
					rd.statuses[resp.StatusCode]++
					if resp.StatusCode != 200 {
						rd.errs++
						if rd.errs <= 3 {
							fmt.Printf("  b%d: %s %s\n", m, resp.Status, strings.TrimSpace(string(body)))
						}
					}
					if resp.Header.Get("X-Stoke-Cold") == "true" {
						rd.cold++
					}
				}()
			}
			t0 := time.Now()
			close(gate)
			wg.Wait()
			rd.wall = time.Since(t0)
			if fs, err := s.functions(); err == nil {
				rd.instances = len(fs[fmt.Sprintf("b%d", m)].Instances)
			}
			res[m] = append(res[m], rd)
		}
	}
	fmt.Printf("%d concurrent requests, max_instances 50, concurrency 1, gateway.queue_size %d, %d rounds per memory size (interleaved)\n", conc, *flagQueue, *flagBurst)
	fmt.Printf("| memory | round | errors | statuses | cold starts | instances after | p50 | p99 | max | all answered in |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, m := range mems {
		for i, rd := range res[m] {
			var st []string
			keys := make([]int, 0, len(rd.statuses))
			for k := range rd.statuses {
				keys = append(keys, k)
			}
			sort.Ints(keys)
			for _, k := range keys {
				st = append(st, fmt.Sprintf("%d×%d", k, rd.statuses[k]))
			}
			fmt.Printf("| %d MB | %d | %d | %s | %d | %d | %s | %s | %s | %s |\n", m, i+1, rd.errs, strings.Join(st, " "), rd.cold, rd.instances,
				ms(pct(rd.lat, .5)), ms(pct(rd.lat, .99)), ms(pct(rd.lat, 1)), ms(rd.wall))
		}
	}
	// Cross-check the cold count with Stoke's records.
	time.Sleep(1500 * time.Millisecond)
	for _, m := range mems {
		var recs []struct{ Cold bool }
		if err := s.get(fmt.Sprintf("/v1/functions/b%d/invocations?cold=1&limit=1000", m), &recs); err != nil {
			return err
		}
		sum := 0
		for _, rd := range res[m] {
			sum += rd.cold
		}
		fmt.Printf("b%d: cold records in the admin API: %d; X-Stoke-Cold: true headers: %d\n", m, len(recs), sum)
	}
	return nil
}
