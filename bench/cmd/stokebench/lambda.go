package main

// Shared parts of the Lambda benchmarks (lambda-warm, lambda-cold): building
// examples/lambda-echo and bench/cmd/echohttp, the API Gateway v2 event both
// send, a closed-loop load generator and process bookkeeping.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildBin builds pkg of the repository into the temp dir (once per run).
func (e *env) buildBin(ctx context.Context, name, pkg string) (string, error) {
	out := filepath.Join(e.dir, name)
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	c := exec.CommandContext(ctx, goBin(), "build", "-o", out, pkg)
	c.Dir = e.root
	if b, err := c.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// echoEvent is the small API Gateway HTTP API (payload 2.0) event the Invoke
// API targets send: what Stoke's route makes of `GET /echo/bench?x=1` from a
// Go client, give or take the ids and the time.
const echoEvent = `{"version":"2.0","routeKey":"$default","rawPath":"/echo/bench","rawQueryString":"x=1",` +
	`"headers":{"accept-encoding":"gzip","host":"127.0.0.1","user-agent":"Go-http-client/1.1"},` +
	`"queryStringParameters":{"x":"1"},"requestContext":{"accountId":"000000000000","apiId":"stoke",` +
	`"domainName":"127.0.0.1","domainPrefix":"127","http":{"method":"GET","path":"/echo/bench",` +
	`"protocol":"HTTP/1.1","sourceIp":"127.0.0.1","userAgent":"Go-http-client/1.1"},` +
	`"requestId":"bench","routeKey":"$default","stage":"$default","time":"26/Nov/2026:06:00:00 +0000",` +
	`"timeEpoch":1795672800000},"isBase64Encoded":false}`

// worker sends one request and waits for the whole response; cold reports a
// response that says it was a cold start (X-Stoke-Cold: true).
type worker func(ctx context.Context) (cold bool, err error)

type loadResult struct {
	lat     []time.Duration
	elapsed time.Duration
	cold    int
}

func (r loadResult) rps() float64 { return float64(len(r.lat)) / r.elapsed.Seconds() }

// runLoad runs len(ws) closed-loop workers, each on its own connection(s),
// until n requests in all were answered (n > 0) or for d. Workers finish the
// request they are in before stopping, so no connection is closed with a
// request in flight (Stoke would discard that instance, and the next round
// would meet a cold start).
func runLoad(ctx context.Context, ws []worker, n int, d time.Duration) (loadResult, error) {
	var (
		mu    sync.Mutex
		res   loadResult
		first error
		sent  int
		wg    sync.WaitGroup
	)
	stop := time.Now().Add(d)
	t0 := time.Now()
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			cold := 0
			defer func() {
				mu.Lock()
				res.lat = append(res.lat, lat...)
				res.cold += cold
				mu.Unlock()
			}()
			for {
				mu.Lock()
				done := first != nil || ctx.Err() != nil || (n > 0 && sent >= n) || (n <= 0 && time.Now().After(stop))
				sent++
				mu.Unlock()
				if done {
					return
				}
				t := time.Now()
				c, err := w(ctx)
				dt := time.Since(t)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				if c {
					cold++
				}
				lat = append(lat, dt)
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(t0)
	if first == nil {
		first = ctx.Err()
	}
	return res, first
}

// children lists the pids whose parent is ppid.
func children(ppid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 1 && f[1] == strconv.Itoa(ppid) {
			out = append(out, pid)
		}
	}
	return out
}

// idleStubs counts Stoke's sandbox stubs: children of the stoke process that
// are still Stoke's own binary (a stub re-executes it with argv = [argv0];
// once handed a function it execs the function's program in place).
func (s *stokeProc) idleStubs() int {
	n := 0
	for _, pid := range children(s.pid) {
		if cmdline(pid) == s.bin {
			n++
		}
	}
	s.mostStubs = max(s.mostStubs, n)
	return n
}

// waitQuiet waits until no function has an instance, no process of any of
// the apps named bins (base names) is alive, and Stoke holds at least stubs idle stubs,
// or, when stubs > 0, as many as it has held (prepared ones too) (a cold start uses one and
// the pool makes its replacement ~50 ms later: that start must not
// overlap the next measurement).
func (s *stokeProc) waitQuiet(ctx context.Context, timeout time.Duration, stubs int, bins ...string) error {
	deadline := time.Now().Add(timeout)
	for {
		fs, err := s.functions()
		if err != nil {
			return err
		}
		n := 0
		for _, f := range fs {
			if !s.keptWarm[f.Name] {
				n += len(f.Instances)
			}
		}
		p := 0
		for _, b := range bins {
			p += len(appProcs(s.e.dir, b))
		}
		st := s.idleStubs()
		want := stubs
		if stubs > 0 { // 0: the caller does not wait for stubs at all
			want = max(stubs, s.mostStubs)
		}
		if n == 0 && p == 0 && st >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v still %d instances, %d function processes, %d of %d stubs", timeout, n, p, st, stubs)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// stopWith stops Stoke and fails the run (a leak) if any process it had
// started (its children: instances and sandbox stubs) is still running
// afterwards. Other Stokes' instances of the same binary are not looked at.
func (s *stokeProc) stopWith() {
	kids := map[int]string{}
	for _, pid := range children(s.pid) {
		kids[pid] = cmdline(pid)
	}
	s.stop()
	for pid, cl := range kids {
		if procExists(pid) && cmdline(pid) == cl {
			s.e.leak(fmt.Sprintf("after stoke (pid %d) stopped, its child %d (%s) was still running; killed", s.pid, pid, cl))
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// instancePids lists the pids of fn's instances.
func (s *stokeProc) instancePids(fn string) []int {
	fs, err := s.functions()
	if err != nil {
		return nil
	}
	var out []int
	for _, in := range fs[fn].Instances {
		if in.Pid > 0 {
			out = append(out, in.Pid)
		}
	}
	sort.Ints(out)
	return out
}

// waitInstances waits until fn has n idle instances.
func (s *stokeProc) waitInstances(ctx context.Context, fn string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		fs, err := s.functions()
		if err != nil {
			return err
		}
		idle := 0
		for _, in := range fs[fn].Instances {
			if in.State == "idle" {
				idle++
			}
		}
		if idle >= n {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: %d of %d instances idle after %v (%v)", fn, idle, n, timeout, ctx.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cpuOf(pids []int) time.Duration {
	var t time.Duration
	for _, p := range pids {
		t += cpuTime(p)
	}
	return t
}
