package chaos_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

var (
	overloadFor = flag.Duration("chaos.overload", 5*time.Second,
		"how long TestOverload sends 50× what the function can take (docs/RELIABILITY.md quotes a 30s run)")
	crashLoopFor = flag.Duration("chaos.crashloop", 10*time.Second,
		"how long TestCrashLoopCPU measures Stoke's CPU over a crash loop")
)

// A function that exits at start, with keep_warm 1, next to a healthy
// one: Stoke serves, the broken function answers 502 at once, and its
// restarts back off, so the loop costs Stoke almost no CPU: measured
// against the same window after a deploy removed the function.
func TestCrashLoopCPU(t *testing.T) {
	s := newStoke(t, httpFn+`  crash:
    runtime: http
    command: [%[1]s]
    keep_warm: 1
    routes: [/crash]
    env: {CHAOS_APP: crash}
`)
	s.start()
	if code, body, _ := s.get("/echo"); code != 200 || !strings.HasPrefix(body, "echo") {
		t.Fatalf("the healthy function next to a crash loop: %d %s", code, body)
	}
	cpuOver := func() time.Duration {
		start := readProc(t, s.pid())
		time.Sleep(*crashLoopFor) // the measurement window, not a synchronisation
		return readProc(t, s.pid()).CPU - start.CPU
	}
	startFailures := s.metric(`stoke_function_start_failures{function="crash"}`)
	loop := cpuOver()
	failures := s.metric(`stoke_function_start_failures{function="crash"}`)
	if failures-startFailures > 6 {
		t.Errorf("%.0f starts in %s: the backoff did not hold", failures-startFailures, *crashLoopFor)
	}
	if v := s.metric(`stoke_function_failing{function="crash"}`); v != 1 {
		t.Errorf("stoke_function_failing{crash} = %v", v)
	}
	begin := time.Now()
	if code, body, _ := s.get("/crash"); code != 502 || !strings.Contains(body, "cannot start (on purpose)") {
		t.Errorf("the crashing function's request: %d %s", code, body)
	}
	if took := time.Since(begin); took > time.Second {
		t.Errorf("the crashing function's 502 took %s", took)
	}
	if out, err := s.cli("ls"); err != nil || !strings.Contains(out, "FAILING crash:") {
		t.Errorf("stoke ls: %v\n%s", err, out)
	}
	// The baseline: the same window once a deploy removed the function.
	s.writeConfig(fmt.Sprintf(httpFn, s.app))
	if out, err := s.cli("deploy"); err != nil {
		t.Fatalf("deploy without the crash loop: %v\n%s", err, out)
	}
	idle := cpuOver()
	pct := func(d time.Duration) float64 { return 100 * d.Seconds() / crashLoopFor.Seconds() }
	t.Logf("crash loop over %s: %.0f failed starts (%.0f since boot); Stoke's CPU %s (%.2f%% of one CPU) with the loop, %s (%.2f%%) without it",
		*crashLoopFor, failures-startFailures, failures, loop, pct(loop), idle, pct(idle))
	if pct(loop-idle) > 2 {
		t.Errorf("the crash loop cost Stoke %.1f%% of a CPU more than idling", pct(loop-idle))
	}
}

// kill -9 of Stoke with 100 Events queued: after a restart every one is
// delivered, at least once; duplicates (attempts cut off by the kill) are
// counted.
func TestKillStokeWithQueuedEvents(t *testing.T) {
	s := newStoke(t, `functions:
  rec:
    runtime: http
    command: [%[1]s]
    memory: 256
    max_instances: 2
    writable: [out]
    env: {CHAOS_APP: http, OUT: out}
`)
	out := filepath.Join(s.dir, "out")
	if err := os.MkdirAll(out, 0o777); err != nil {
		t.Fatal(err)
	}
	// The function's own absolute path: it runs in its cwd, the config's dir.
	s.writeConfig(strings.Replace(mustRead(t, s.cfg), "OUT: out", "OUT: "+out, 1)[strings.Index(mustRead(t, s.cfg), "functions:"):])
	s.start()
	const n = 100
	for i := range n {
		req, _ := http.NewRequest("POST", "http://"+s.gw+"/2015-03-31/functions/rec/invocations", strings.NewReader(fmt.Sprintf(`{"n":%d}`, i)))
		req.Header.Set("X-Amz-Invocation-Type", "Event")
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 202 {
			t.Fatalf("event %d: %v %v", i, err, resp)
		}
		resp.Body.Close()
	}
	log := filepath.Join(out, "delivered.log")
	waitFor(t, 30*time.Second, "10 events delivered", func() bool { return len(delivered(t, log)) >= 10 })
	s.kill()
	before := len(delivered(t, log))
	s.start()
	var evs []admin.EventInfo
	waitFor(t, 60*time.Second, "every event succeeded", func() bool {
		evs = nil
		s.admin("GET", "/v1/functions/rec/events?limit=1000", &evs)
		ok := 0
		for _, e := range evs {
			if e.Status == "succeeded" {
				ok++
			}
		}
		return ok == n
	})
	lines := delivered(t, log)
	seen := map[int]int{}
	for _, l := range lines {
		seen[l]++
	}
	interrupted := 0
	for _, e := range evs {
		interrupted += e.Interrupted
	}
	dups := len(lines) - len(seen)
	t.Logf("100 events, Stoke killed after %d deliveries: %d delivered, %d duplicates, %d attempts cut off by the kill",
		before, len(seen), dups, interrupted)
	if len(seen) != n {
		t.Errorf("%d of %d events delivered", len(seen), n)
	}
	if dups > interrupted {
		t.Errorf("%d duplicates but only %d attempts were cut off", dups, interrupted)
	}
	s.stop()
}

// delivered reads the event numbers the function logged.
func delivered(t *testing.T, path string) []int {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if n, err := strconv.Atoi(strings.Fields(sc.Text())[0]); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// SIGTERM under load: every request Stoke accepted is answered whole, 200;
// the rest are refused at connect (the listener closed), none broken.
func TestSigtermUnderLoad(t *testing.T) {
	s := newStoke(t, httpFn)
	s.start()
	noReuse := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	var ok, refused, broken atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 16 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := noReuse.Get("http://" + s.gw + "/sleep?ms=100")
				var oe *net.OpError
				switch {
				case err != nil && errors.As(err, &oe) && oe.Op == "dial":
					refused.Add(1)
					time.Sleep(5 * time.Millisecond)
					continue
				case err != nil:
					broken.Add(1)
					t.Logf("broken: %v", err)
					continue
				}
				b := make([]byte, 64)
				n, rerr := resp.Body.Read(b)
				resp.Body.Close()
				if resp.StatusCode == 200 && strings.HasPrefix(string(b[:n]), "slept 100") && (rerr == nil || rerr.Error() == "EOF") {
					ok.Add(1)
				} else {
					broken.Add(1)
					t.Logf("broken: %d %q %v", resp.StatusCode, b[:n], rerr)
				}
			}
		})
	}
	waitFor(t, 30*time.Second, "load on the function", func() bool { return ok.Load() >= 50 })
	inflight := int64(0)
	for _, in := range s.fn("web").Instances {
		inflight += int64(in.Inflight)
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		t.Fatal("stoke did not stop on SIGTERM")
	}
	close(stop)
	wg.Wait()
	t.Logf("SIGTERM with ~%d requests in flight: %d answered 200, %d refused at connect after the listener closed, %d broken",
		inflight, ok.Load(), refused.Load(), broken.Load())
	if s.waitErr != nil {
		t.Errorf("stoke exited with %v", s.waitErr)
	}
	if broken.Load() != 0 {
		t.Errorf("%d requests broken by the shutdown", broken.Load())
	}
	// The gateway's listener was quiesced (internal/server/quiesce.go), not
	// just closed: the accept queue's connections were served.
	if out := s.out.String(); strings.Contains(out, "before closing the listener") || strings.Contains(out, "connections just accepted") {
		t.Errorf("the listener was not quiesced:\n%s", out)
	}
}

// 50× overload: 100 clients on a function that serves 2 at a time get
// only 200s and 429s; afterwards Stoke's goroutines, open files and memory
// go back to where they were (measured).
func TestOverload(t *testing.T) {
	// keep_warm 2: the baseline has the instances the overload will use;
	// 10 requests may wait, the rest are throttled.
	s := newStoke(t, "gateway: {queue_size: 10}\n"+strings.Replace(httpFn, "max_instances: 4", "max_instances: 2\n    keep_warm: 2", 1))
	s.start()
	waitFor(t, 30*time.Second, "2 warm instances", func() bool { return len(s.fn("web").Instances) == 2 })
	for range 3 {
		s.get("/echo")
	}
	settle := func() procStat {
		time.Sleep(2 * time.Second) // let idle keep-alive connections and timers expire
		return readProc(t, s.pid())
	}
	base := settle()
	baseG := s.metric("go_goroutines")
	baseFDs := fdTargets(s.pid())
	tr := &http.Transport{MaxIdleConnsPerHost: 100}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	codes := map[int]int{}
	var mu sync.Mutex
	var errs atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), *overloadFor)
	defer cancel()
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := c.Get("http://" + s.gw + "/sleep?ms=20")
				if err != nil {
					errs.Add(1)
					continue
				}
				b := make([]byte, 512)
				resp.Body.Read(b)
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	peak := readProc(t, s.pid())
	tr.CloseIdleConnections()
	var after procStat
	var afterG float64
	for deadline := time.Now().Add(60 * time.Second); ; {
		after, afterG = settle(), s.metric("go_goroutines")
		if afterG <= baseG+5 && after.FDs <= base.FDs+3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s goroutines %v (baseline %v), open files %d (baseline %d): %v",
				afterG, baseG, after.FDs, base.FDs, newFDs(baseFDs, fdTargets(s.pid())))
		}
	}
	total := 0
	for _, n := range codes {
		total += n
	}
	t.Logf("overload for %s: %d requests (%d × 200, %d × 429, other %v), %d client errors; goroutines %v → %v; fds %d → %d (peak %d); RSS %d → %d KB (peak %d)",
		*overloadFor, total, codes[200], codes[429], others(codes), errs.Load(), baseG, afterG, base.FDs, after.FDs, peak.FDs,
		base.RSSKB, after.RSSKB, peak.RSSKB)
	if len(others(codes)) > 0 || errs.Load() > 0 {
		t.Errorf("answers other than 200 and 429: %v, client errors %d", others(codes), errs.Load())
	}
	if codes[200] == 0 || codes[429] == 0 {
		t.Errorf("not an overload: %v", codes)
	}
	if after.RSSKB > base.RSSKB+100<<10 {
		t.Errorf("RSS %d KB after the overload, %d before", after.RSSKB, base.RSSKB)
	}
}

func others(codes map[int]int) map[int]int {
	out := map[int]int{}
	for c, n := range codes {
		if c != 200 && c != 429 {
			out[c] = n
		}
	}
	return out
}

// A full data_dir (a small tmpfs the test mounts and fills): requests are
// served all along; the records and log lines that cannot be written are
// counted and reported; writes resume once there is space.
func TestDiskFull(t *testing.T) {
	data := sandboxtest.Tmpfs(t, "", "8m")
	s := newStoke(t, "")
	s.dataDir = data
	s.writeConfig(fmt.Sprintf(httpFn, s.app))
	s.start()
	for range 5 {
		if code, _, _ := s.get("/echo"); code != 200 {
			t.Fatalf("before the disk filled: %d", code)
		}
	}
	filler := sandboxtest.Fill(t, data)
	var status admin.Status
	served := 0
	waitFor(t, 30*time.Second, "writes failing, reported", func() bool {
		code, body, _ := s.get("/echo?x=" + strconv.Itoa(served))
		if code != 200 || !strings.HasPrefix(body, "echo") {
			t.Fatalf("a request on a full disk: %d %s", code, body)
		}
		served++
		s.admin("GET", "/v1/status", &status)
		return !status.Store.Writable && status.Store.Lost > 0
	})
	for range 50 { // and on: nothing waits on the disk
		code, body, _ := s.get("/echo?x=" + strconv.Itoa(served))
		if code != 200 || !strings.HasPrefix(body, "echo") {
			t.Fatalf("a request on a full disk: %d %s", code, body)
		}
		served++
	}
	lost := s.metric("stoke_store_lost_total")
	if lost <= 0 || s.metric("stoke_store_writable") != 0 || !strings.Contains(status.Store.LastError, "no space left") {
		t.Errorf("lost %v writable %v status %+v", lost, s.metric("stoke_store_writable"), status.Store)
	}
	if !strings.Contains(s.out.String(), "store: cannot write") {
		t.Errorf("no log line about the failing writes:\n%s", s.out.String())
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "writes succeeding again", func() bool {
		s.get("/echo")
		s.admin("GET", "/v1/status", &status)
		return status.Store.Writable
	})
	t.Logf("disk full: %d requests served while full, all 200; %.0f records and log lines lost, counted; writes resumed once space was freed", served, lost)
	s.stop()
}
