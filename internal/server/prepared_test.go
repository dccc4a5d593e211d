package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// preparedStubs lists this process's sandbox stubs whose cgroup has a
// memory limit of mb MB (an idle stub's has none: these were prepared for
// a function of that size), with their memory cgroup directories.
func preparedStubs(t *testing.T, mb int) map[int]string {
	t.Helper()
	// Children are listed per thread: stubs are forked on a thread of their own.
	var kids []string
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", os.Getpid()))
	for _, task := range tasks {
		b, _ := os.ReadFile(task)
		kids = append(kids, strings.Fields(string(b))...)
	}
	out := map[int]string{}
	for _, f := range kids {
		pid, _ := strconv.Atoi(f)
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if !strings.Contains(string(env), "STOKE_SANDBOX_STUB=") {
			continue
		}
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		for l := range strings.Lines(string(cg)) {
			if _, rel, ok := strings.Cut(strings.TrimSpace(l), ":memory:"); ok {
				dir := filepath.Join("/sys/fs/cgroup/memory", rel)
				lim, _ := os.ReadFile(filepath.Join(dir, "memory.limit_in_bytes"))
				if strings.TrimSpace(string(lim)) == strconv.Itoa(mb<<20) {
					out[pid] = dir
				}
			}
		}
	}
	return out
}

// After a cold start Stoke keeps a stub prepared for the function (its
// limits written); a deploy discards it, process and cgroup, before it
// returns, and the new version's next cold start prepares one anew.
func TestPreparedStubDiscardedOnDeploy(t *testing.T) {
	if os.Geteuid() != 0 {
		sandboxtest.SkipWithoutCgroups(t, "cgroups need root")
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
		sandboxtest.SkipWithoutCgroups(t, "no cgroup v1 memory hierarchy (this test reads its files)")
	}
	sandboxtest.CheckNoLeaks(t)
	dir := t.TempDir()
	app := sandboxtest.InDir(t, dir)
	conf := func(greeting string) string {
		return fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: "127.0.0.1:0"}
functions:
  f:
    runtime: http
    command: [%q]
    memory: 1000
    routes: [/f/*]
    env: {STOKE_SRV_APP: "1", GREETING: %s}
`, app, greeting)
	}
	s := serve(t, dir, conf("one"))
	get := func() { t.Helper(); getOK(t, "http://"+s.GatewayAddr()+"/f/x") }
	waitPrepared := func() map[int]string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if p := preparedStubs(t, 1000); len(p) == 1 {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("prepared stubs after 10 s: %v, want one", preparedStubs(t, 1000))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	get()
	before := waitPrepared()
	if _, err := s.Deploy(context.Background(), filepath.Join(dir, "stoke.yaml"), []byte(conf("two"))); err != nil {
		t.Fatal(err)
	}
	for pid, cg := range before {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			t.Errorf("prepared stub %d still running after the deploy", pid)
		}
		if _, err := os.Stat(cg); err == nil {
			t.Errorf("prepared stub's cgroup %s still there after the deploy", cg)
		}
	}
	// The deploy stopped the old instance; the new version cold-starts and
	// a stub is prepared for it again.
	get()
	for pid := range waitPrepared() {
		if before[pid] != "" {
			t.Errorf("stub %d prepared before the deploy is still kept", pid)
		}
	}
}

// loopbackListeners are the ports this process listens on at 127.0.0.1.
func loopbackListeners(t *testing.T) map[int]bool {
	t.Helper()
	own := map[string]bool{}
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:[") {
			own[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	b, err := os.ReadFile("/proc/self/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]bool{}
	for l := range strings.Lines(string(b)) {
		f := strings.Fields(l)
		// sl local_address rem_address st ... inode; 0A is LISTEN.
		if len(f) < 10 || f[3] != "0A" || !own[f[9]] || !strings.HasPrefix(f[1], "0100007F:") {
			continue
		}
		if port, err := strconv.ParseInt(strings.TrimPrefix(f[1], "0100007F:"), 16, 32); err == nil {
			out[int(port)] = true
		}
	}
	return out
}

// After a lambda cold start Stoke keeps a Runtime API listener made ahead
// for the function; a deploy closes it before it returns (the old
// version's instance may still be draining), and the new version's next
// cold start makes one anew.
func TestSpareListenerClosedOnDeploy(t *testing.T) {
	sandboxtest.CheckNoLeaks(t)
	dir := t.TempDir()
	app := sandboxtest.InDir(t, dir)
	token := strings.Repeat("t0ken", 8)
	conf := func(tag string) string {
		return fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: "127.0.0.1:0", token: %s}
functions:
  f:
    runtime: lambda
    command: [%q]
    routes: [/f]
    env: {STOKE_TRACE_APP: lambda, TAG: %s}
`, token, app, tag)
	}
	s := serve(t, dir, conf("one"))
	get := func() { t.Helper(); getOK(t, "http://"+s.GatewayAddr()+"/f") }
	// spare is the port listened on besides those in base and the
	// running instance's Runtime API.
	spare := func(base map[int]bool) int {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			api := 0
			for _, fi := range functions(t, s, token) {
				for _, in := range fi.Instances {
					env, _ := os.ReadFile("/proc/" + strconv.Itoa(in.Pid) + "/environ")
					for kv := range strings.SplitSeq(string(env), "\x00") {
						if a, ok := strings.CutPrefix(kv, "AWS_LAMBDA_RUNTIME_API=127.0.0.1:"); ok {
							api, _ = strconv.Atoi(a)
						}
					}
				}
			}
			var extra []int
			for p := range loopbackListeners(t) {
				if !base[p] && p != api {
					extra = append(extra, p)
				}
			}
			if api != 0 && len(extra) == 1 {
				return extra[0]
			}
			if time.Now().After(deadline) {
				t.Fatalf("no single listener made ahead after 10 s: instance's API %d, other new listeners %v", api, extra)
			}
		}
	}
	base := loopbackListeners(t)
	get()
	before := spare(base)
	if _, err := s.Deploy(context.Background(), filepath.Join(dir, "stoke.yaml"), []byte(conf("two"))); err != nil {
		t.Fatal(err)
	}
	if loopbackListeners(t)[before] {
		t.Fatalf("the Runtime API listener made ahead (port %d) still listens after the deploy", before)
	}
	get()
	if after := spare(base); after == before {
		t.Fatalf("the listener made before the deploy (port %d) is kept", before)
	}
}

// getOK GETs url and fails the test unless the answer is a 200.
func getOK(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
}
