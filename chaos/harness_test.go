package chaos_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// The test binary doubles as the functions: CHAOS_APP picks which (apps_test.go).
func TestMain(m *testing.M) {
	if app := os.Getenv("CHAOS_APP"); app != "" {
		runApp(app)
		return
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// stokeBin builds the stoke binary once per test run.
func stokeBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "stoke-chaos-bin")
		if err != nil {
			buildErr = err
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "stoke"), "../cmd/stoke").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build stoke: %v\n%s", err, out)
			return
		}
		binDir = dir
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "stoke")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// stoke is one running `stoke serve`.
type stoke struct {
	t       *testing.T
	bin     string
	dir     string // the config's directory
	dataDir string // absolute; default dir/data
	app     string // this test binary, in dir: the functions' command
	cfg     string
	gw, adm string
	cmd     *exec.Cmd
	out     *syncBuf
	exited  chan struct{}
	waitErr error
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// newStoke writes a config (listen, admin and data_dir filled in, functions
// as given, %[1]s in them is the app's path) in a fresh directory.
func newStoke(t *testing.T, functions string) *stoke {
	t.Helper()
	dir := t.TempDir()
	app := sandboxtest.InDir(t, dir) // isolated, a function sees only its own directory
	s := &stoke{t: t, bin: stokeBin(t), dir: dir, app: app, cfg: filepath.Join(dir, "stoke.yaml"), gw: freeAddr(t), adm: freeAddr(t)}
	s.writeConfig(fmt.Sprintf(functions, app))
	return s
}

// writeConfig writes the config with the given functions block.
func (s *stoke) writeConfig(functions string) {
	if s.dataDir == "" {
		s.dataDir = filepath.Join(s.dir, "data")
	}
	cfg := fmt.Sprintf("listen: %s\nadmin: {listen: %q}\ndata_dir: %s\ninvoke_api: {auth: none}\n%s", s.gw, s.adm, s.dataDir, functions)
	if err := os.WriteFile(s.cfg, []byte(cfg), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// start runs stoke serve and waits until it serves.
func (s *stoke) start() {
	t := s.t
	t.Helper()
	s.out = &syncBuf{}
	s.cmd = exec.Command(s.bin, "serve", "-f", s.cfg)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func() { s.waitErr = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(s.shutdown)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(s.out.String(), "stoke is serving") {
		select {
		case <-s.exited:
			t.Fatalf("stoke exited before serving (%v):\n%s", s.waitErr, s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("stoke did not start:\n%s", s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends stoke with SIGKILL (a crash) if it still runs, and waits.
func (s *stoke) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// shutdown stops stoke if it still runs, gracefully if it can (so it
// removes its cgroups), and checks it left none behind.
func (s *stoke) shutdown() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.t.Errorf("stoke did not stop on SIGTERM; killing it:\n%s", s.out.String())
		s.kill()
	}
	s.checkNoCgroups()
}

// checkNoCgroups fails the test if stoke's cgroups outlive it.
func (s *stoke) checkNoCgroups() {
	for _, h := range []string{"memory", "cpu", "pids", "unified", ""} {
		p := filepath.Join("/sys/fs/cgroup", h, "stoke", strconv.Itoa(s.pid()))
		if _, err := os.Stat(p); err == nil {
			s.t.Errorf("cgroup left behind by stoke: %s", p)
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (s *stoke) stop() {
	t := s.t
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.waitErr != nil {
			t.Errorf("stoke exited with %v:\n%s", s.waitErr, s.out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("stoke did not stop on SIGTERM:\n%s", s.out.String())
	}
	s.checkNoCgroups()
}

func (s *stoke) pid() int { return s.cmd.Process.Pid }

func (s *stoke) token() string {
	b, err := os.ReadFile(filepath.Join(s.dataDir, "admin-token"))
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// cli runs a stoke CLI command against this server.
func (s *stoke) cli(args ...string) (string, error) {
	args = append(args, "-f", s.cfg)
	cmd := exec.Command(s.bin, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var client = &http.Client{Timeout: 60 * time.Second}

// get is a GET on the gateway.
func (s *stoke) get(path string) (int, string, http.Header) {
	s.t.Helper()
	return s.do(http.MethodGet, path, nil)
}

func (s *stoke) do(method, path string, body []byte) (int, string, http.Header) {
	s.t.Helper()
	req, _ := http.NewRequest(method, "http://"+s.gw+path, bytes.NewReader(body))
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// invoke calls the Invoke API (RequestResponse) and returns the status, the
// X-Amz-Function-Error header and the payload.
func (s *stoke) invoke(fn string, payload string) (int, string, string) {
	s.t.Helper()
	resp, err := client.Post("http://"+s.gw+"/2015-03-31/functions/"+fn+"/invocations", "application/json", strings.NewReader(payload))
	if err != nil {
		s.t.Fatalf("invoke %s: %v", fn, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Amz-Function-Error"), string(b)
}

// admin calls the admin API and decodes its JSON answer into v (if not nil).
func (s *stoke) admin(method, path string, v any) int {
	s.t.Helper()
	req, _ := http.NewRequest(method, "http://"+s.adm+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.token())
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatalf("admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, v); err != nil {
			s.t.Fatalf("admin %s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

// metric reads one sample of /metrics whose line starts with prefix (name
// and labels), or -1 when there is none.
func (s *stoke) metric(prefix string) float64 {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.adm+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.token())
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, prefix+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(line[len(prefix):]), 64)
			return v
		}
	}
	return -1
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procStat is what /proc says of a process: CPU time (user+system), RSS,
// open files and threads.
type procStat struct {
	CPU     time.Duration
	RSSKB   int
	FDs     int
	Threads int
}

func readProc(t *testing.T, pid int) procStat {
	t.Helper()
	var ps procStat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	// Fields after comm: state(0) ... utime(11) stime(12) ... num_threads(17).
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	ps.CPU = time.Duration(ut+st) * time.Second / 100 // USER_HZ
	ps.Threads, _ = strconv.Atoi(f[17])
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			ps.RSSKB, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	ps.FDs = len(fds)
	return ps
}

// fdTargets is what each of a process's descriptors refers to, by number.
func fdTargets(pid int) map[string]string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	out := map[string]string{}
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil {
			out[e.Name()] = target
		}
	}
	return out
}

// newFDs lists the descriptors of now that were not open, to the same
// target, in base: what a leak check that failed is holding.
func newFDs(base, now map[string]string) []string {
	var out []string
	for fd, target := range now {
		if base[fd] != target {
			out = append(out, fd+" -> "+target)
		}
	}
	sort.Strings(out)
	return out
}

// ctxT is a context bounded for one chaos case.
func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
