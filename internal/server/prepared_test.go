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
	get := func() {
		t.Helper()
		resp, err := http.Get("http://" + s.GatewayAddr() + "/f/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET: %d %s", resp.StatusCode, b)
		}
	}
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
