package chaos_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/admin"
)

const httpFn = `functions:
  web:
    runtime: http
    command: [%[1]s]
    memory: 256
    timeout: 3s
    max_instances: 4
    routes: [/echo, /sleep, /hang, /panic, /answer-then-exit, /pid]
    env: {CHAOS_APP: http}
`

// bombFn runs the fork bomb with a whole CPU, so it meets its pids limit
// well within its timeout even on a loaded machine (5 s was not always
// enough under CI's load); memFn the memory bomb, with a timeout a loaded
// machine's page faults cannot reach before the memory limit.
const bombFn = `  bomb:
    runtime: http
    command: [%[1]s]
    memory: 1769
    timeout: 12s
    routes: [/forkbomb]
    env: {CHAOS_APP: http}
  mem:
    runtime: http
    command: [%[1]s]
    memory: 256
    timeout: 30s
    routes: [/membomb]
    env: {CHAOS_APP: http}
`

// fn is the named function as the admin API lists it.
func (s *stoke) fn(name string) admin.FunctionInfo {
	s.t.Helper()
	var fns []admin.FunctionInfo
	s.admin("GET", "/v1/functions", &fns)
	for _, f := range fns {
		if f.Name == name {
			return f
		}
	}
	s.t.Fatalf("function %s is not deployed", name)
	return admin.FunctionInfo{}
}

// busyPid waits for an instance of name with a request in flight and
// returns its pid.
func (s *stoke) busyPid(name string) int {
	s.t.Helper()
	pid := 0
	waitFor(s.t, 20*time.Second, "a busy instance of "+name, func() bool {
		for _, in := range s.fn(name).Instances {
			if in.State == "busy" && in.Inflight > 0 && in.Pid > 0 {
				pid = in.Pid
				return true
			}
		}
		return false
	})
	return pid
}

type answer struct {
	status int
	body   string
}

// inFlight sends a GET in the background; its answer arrives on the channel.
func (s *stoke) inFlight(path string) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		resp, err := client.Get("http://" + s.gw + path)
		if err != nil {
			ch <- answer{0, err.Error()}
			return
		}
		defer resp.Body.Close()
		b := make([]byte, 4096)
		n, _ := resp.Body.Read(b)
		ch <- answer{resp.StatusCode, string(b[:n])}
	}()
	return ch
}

// kill -9 of an instance mid-request: that request gets Lambda's error for
// a runtime that exited, and the next one is served (by a new instance).
func TestKillInstanceMidRequest(t *testing.T) {
	s := newStoke(t, httpFn+`  fn:
    runtime: lambda
    command: [%[1]s]
    memory: 256
    timeout: 10s
    max_instances: 2
    env: {CHAOS_APP: lambda}
`+pyFn)
	s.pyApp()
	s.start()
	t.Run("http", func(t *testing.T) {
		ch := s.inFlight("/sleep?ms=8000")
		pid := s.busyPid("web")
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		a := <-ch
		if a.status != 502 || !strings.Contains(a.body, "Runtime.ExitError") || !strings.Contains(a.body, "signal: killed") {
			t.Errorf("the killed request: %d %s", a.status, a.body)
		}
		if code, body, _ := s.get("/echo?after=kill"); code != 200 || !strings.HasPrefix(body, "echo after=kill") {
			t.Errorf("the next request: %d %s", code, body)
		}
	})
	t.Run("python-wsgi", func(t *testing.T) {
		ch := s.inFlight("/py/sleep?ms=8000")
		pid := s.busyPid("py")
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		a := <-ch
		if a.status != 502 || !strings.Contains(a.body, "Runtime.ExitError") || !strings.Contains(a.body, "signal: killed") {
			t.Errorf("the killed request: %d %s", a.status, a.body)
		}
		if code, body, _ := s.get("/py/ok"); code != 200 || !strings.HasPrefix(body, "ok ") {
			t.Errorf("the next request: %d %s", code, body)
		}
	})
	t.Run("lambda", func(t *testing.T) {
		type res struct {
			status  int
			fe, out string
		}
		ch := make(chan res, 1)
		go func() {
			st, fe, out := s.invoke("fn", `{"op":"sleep","n":8000}`)
			ch <- res{st, fe, out}
		}()
		pid := s.busyPid("fn")
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		r := <-ch
		if r.status != 200 || r.fe != "Unhandled" || !strings.Contains(r.out, `"errorType":"Runtime.ExitError"`) || !strings.Contains(r.out, "signal: killed") {
			t.Errorf("the killed invocation: %d %q %s", r.status, r.fe, r.out)
		}
		if st, fe, out := s.invoke("fn", `{"op":"echo","value":"next"}`); st != 200 || fe != "" || !strings.Contains(out, `"value":"next"`) {
			t.Errorf("the next invocation: %d %q %s", st, fe, out)
		}
	})
}

// A request that hangs past the function's timeout gets Lambda's timeout
// answer; its instance is stopped; the next request is served.
func TestHangPastTimeout(t *testing.T) {
	s := newStoke(t, httpFn)
	s.start()
	begin := time.Now()
	code, body, _ := s.get("/hang")
	if code != 504 || !strings.Contains(body, "Task timed out after 3.00 seconds") {
		t.Errorf("the hung request: %d %s", code, body)
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Errorf("the hung request took %s with a 3 s timeout", took)
	}
	waitFor(t, 10*time.Second, "the hung instance stopped", func() bool {
		for _, in := range s.fn("web").Instances {
			if in.State == "busy" {
				return false
			}
		}
		return true
	})
	if code, body, _ := s.get("/echo"); code != 200 || !strings.HasPrefix(body, "echo") {
		t.Errorf("the next request: %d %s", code, body)
	}
}

// A fork bomb stays inside its instance's pids limit and ends with it (at
// the function's timeout); a memory bomb is killed at its memory limit.
// Stoke serves the next request either way.
func TestForkAndMemoryBombs(t *testing.T) {
	s := newStoke(t, httpFn+bombFn)
	s.start()
	t.Run("fork", func(t *testing.T) {
		ch := s.inFlight("/forkbomb")
		pid := s.busyPid("bomb")
		// While it runs, its cgroup holds at most the pids limit.
		cg := pidsCgroup(t, pid)
		limit := readInt(t, filepath.Join(cg, "pids.max"))
		peak, refused := 0, 0
		var a answer
	watch:
		for {
			select {
			case a = <-ch:
				break watch
			case <-time.After(10 * time.Millisecond):
			}
			if n, err := os.ReadFile(filepath.Join(cg, "pids.current")); err == nil {
				v, _ := strconv.Atoi(strings.TrimSpace(string(n)))
				peak = max(peak, v)
			}
			// pids.events counts the forks the limit refused.
			if ev, err := os.ReadFile(filepath.Join(cg, "pids.events")); err == nil {
				if v, ok := strings.CutPrefix(strings.TrimSpace(string(ev)), "max "); ok {
					refused, _ = strconv.Atoi(v)
				}
			}
		}
		if a.status != 504 || !strings.Contains(a.body, "Task timed out") {
			t.Errorf("the fork bomb's request: %d %s", a.status, a.body)
		}
		if refused == 0 || peak > limit {
			t.Errorf("the fork bomb: %d tasks at most, %d forks refused, limit %d", peak, refused, limit)
		}
		t.Logf("fork bomb: %d tasks at most seen, %d forks refused by pids.max %d", peak, refused, limit)
		waitFor(t, 10*time.Second, "the bomb's cgroup gone", func() bool {
			_, err := os.Stat(cg)
			return os.IsNotExist(err)
		})
		if code, body, _ := s.get("/echo"); code != 200 || !strings.HasPrefix(body, "echo") {
			t.Errorf("after the fork bomb: %d %s", code, body)
		}
	})
	t.Run("memory", func(t *testing.T) {
		code, body, _ := s.get("/membomb")
		if code != 502 || !strings.Contains(body, "Runtime.OutOfMemory") || !strings.Contains(body, "256 MB") {
			t.Errorf("the memory bomb: %d %s", code, body)
		}
		if code, body, _ := s.get("/echo"); code != 200 || !strings.HasPrefix(body, "echo") {
			t.Errorf("after the memory bomb: %d %s", code, body)
		}
	})
}

// pidsCgroup is the pids cgroup directory of process pid.
func pidsCgroup(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) == 3 && (f[1] == "pids" || f[1] == "") {
			dir := filepath.Join("/sys/fs/cgroup", f[1], f[2])
			if f[1] == "" {
				dir = filepath.Join("/sys/fs/cgroup", f[2])
			}
			if _, err := os.Stat(filepath.Join(dir, "pids.max")); err == nil {
				return dir
			}
		}
	}
	t.Fatalf("no pids cgroup for pid %d in %s", pid, b)
	return ""
}

func readInt(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}
