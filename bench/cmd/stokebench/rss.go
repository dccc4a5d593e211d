package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// benchRSS: VmRSS of the stoke process with 100 functions configured (all
// sharing the hello binary, routes /f0../f99, no keep_warm), after startup,
// and again after one request to each function once the instances were
// reaped. Baselines in the same run: stoke with no functions and with one.
func benchRSS(ctx context.Context, e *env) error {
	fn := func(i int) string {
		return fmt.Sprintf(`  f%d:
    runtime: http
    command: [%s]
    memory: 128
    keep_warm: 0
    idle_timeout: 200ms
    routes: [/f%d]
`, i, "./hello", i)
	}
	type row struct {
		name                     string
		start, after, hwm, final float64
	}
	var rows []row
	for _, n := range []int{0, 1, 100} {
		var cfg strings.Builder
		cfg.WriteString("functions:\n")
		if n == 0 {
			cfg.Reset()
			cfg.WriteString("functions: {}\n")
		}
		for i := 0; i < n; i++ {
			cfg.WriteString(fn(i))
		}
		s, err := e.startStoke(ctx, fmt.Sprintf("rss%d", n), cfg.String(), e.hello)
		if err != nil {
			return err
		}
		time.Sleep(2 * time.Second)
		r := row{name: fmt.Sprintf("%d functions", n), start: status(s.pid, "VmRSS")}
		if n > 0 {
			var wg sync.WaitGroup
			sem := make(chan struct{}, 4)
			var errs []string
			var mu sync.Mutex
			for i := 0; i < n; i++ {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					resp, err := http.Get(fmt.Sprintf("%s/f%d", s.gw, i))
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							err = fmt.Errorf("status %s", resp.Status)
						}
					}
					if err != nil {
						mu.Lock()
						errs = append(errs, fmt.Sprintf("f%d: %v", i, err))
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if len(errs) > 0 {
				fmt.Printf("errors: %d, first: %s\n", len(errs), errs[0])
			}
			if err := s.waitIdle(ctx, 30*time.Second); err != nil {
				s.stop()
				return err
			}
			time.Sleep(2 * time.Second)
			r.after = status(s.pid, "VmRSS")
			time.Sleep(10 * time.Second) // idle longer: does the Go runtime give memory back?
			r.final = status(s.pid, "VmRSS")
		}
		r.hwm = status(s.pid, "VmHWM")
		s.stop()
		rows = append(rows, r)
	}
	fmt.Printf("| stoke with | VmRSS after start (+2 s) | after 1 request each, reaped (+2 s) | same, +12 s | VmHWM |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		if r.after == 0 {
			fmt.Printf("| %s | %.1f MB | — | — | %.1f MB |\n", r.name, r.start, r.hwm)
			continue
		}
		fmt.Printf("| %s | %.1f MB | %.1f MB | %.1f MB | %.1f MB |\n", r.name, r.start, r.after, r.final, r.hwm)
	}
	last := rows[len(rows)-1]
	worst := max(last.start, last.after, last.final)
	verdict := "MET"
	if worst > 60 {
		verdict = fmt.Sprintf("MISSED by %.1f MB", worst-60)
	}
	fmt.Printf("target: ≤ 60 MB with 100 idle functions: worst %.1f MB → %s\n", worst, verdict)
	return nil
}
