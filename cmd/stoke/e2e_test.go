package main_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/config"
)

// End to end: the real stoke binary, the real examples/hello, real HTTP, the
// real CLI talking to the real admin API.

var buildOnce sync.Once
var binDir string

// build compiles stoke and examples/hello once per test binary run.
func build(t *testing.T) (stoke, hello string) {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "stoke-e2e-bin")
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range [][2]string{{"stoke", "."}, {"hello", "../../examples/hello"}} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(dir, b[0]), b[1]).CombinedOutput()
			if err != nil {
				t.Fatalf("go build %s: %v\n%s", b[1], err, out)
			}
		}
		binDir = dir
	})
	if binDir == "" {
		t.Fatal("build failed earlier")
	}
	return filepath.Join(binDir, "stoke"), filepath.Join(binDir, "hello")
}

// copyFile copies an executable (into a function's directory).
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// lambdaEchoIn builds examples/lambda-echo into dir as dir/lambda-echo: in
// the function's own directory, as an isolated function sees its cwd, not
// the test's temporary directories.
func lambdaEchoIn(t *testing.T, dir string) {
	t.Helper()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "lambda-echo"), "../../examples/lambda-echo").CombinedOutput(); err != nil {
		t.Fatalf("building lambda-echo: %v\n%s", err, out)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type stokeProc struct {
	t        *testing.T
	bin, cfg string
	gw       string
	cmd      *exec.Cmd
	out      *syncBuf
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// writeConfig writes a config whose function hello is built by copying
// the hello binary from its own directory: an isolated build sees its cwd,
// not the test's temporary directories.
func writeConfig(t *testing.T, dir, gw, adm, hello, extra string) string {
	copyFile(t, hello, filepath.Join(dir, "hello-src"))
	cfg := fmt.Sprintf(`listen: %s
admin:
  listen: %s
data_dir: data
gateway:
  timeout: 5s
functions:
  hello:
    runtime: http
    build: cp ./hello-src ./hello-bin.new && mv ./hello-bin.new ./hello-bin
    command: [./hello-bin]
    memory: 1769
    timeout: 2s
    max_instances: 4
    routes: [/hello, /hello/*]
    env: {GREETING: %s}
`, gw, adm, extra)
	p := filepath.Join(dir, "stoke.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// appendConfig adds yaml at the end of the config file cfg.
func appendConfig(t *testing.T, cfg, yaml string) {
	t.Helper()
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(yaml); err != nil {
		t.Fatal(err)
	}
}

// adminGet GETs path from the admin API at adm with the admin token Stoke
// wrote under dir/data, as the CLI and Prometheus do.
func adminGet(t *testing.T, dir, adm, path string) (status int, body []byte) {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(dir, "data", "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+adm+path, nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func startStoke(t *testing.T, bin, cfg, gw string) *stokeProc {
	t.Helper()
	return startStokeWith(t, bin, cfg, gw, nil)
}

// startStokeWith is startStoke with the command set up by setup first
// (its user, its environment).
func startStokeWith(t *testing.T, bin, cfg, gw string, setup func(*exec.Cmd)) *stokeProc {
	t.Helper()
	s := &stokeProc{t: t, bin: bin, cfg: cfg, gw: gw, out: &syncBuf{}}
	s.cmd = exec.Command(bin, "serve", "-f", cfg)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if setup != nil {
		setup(s.cmd)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(s.out.String(), "stoke is serving") {
		if time.Now().After(deadline) || s.cmd.ProcessState != nil {
			s.cmd.Process.Kill()
			s.cmd.Wait()
			t.Fatalf("stoke did not start:\n%s", s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// stop sends SIGTERM and checks that stoke exits cleanly leaving no process
// or cgroup behind.
func (s *stokeProc) stop() {
	t := s.t
	t.Helper()
	pid := s.cmd.Process.Pid
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("stoke exited with %v:\n%s", err, s.out.String())
		}
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		t.Fatalf("stoke did not stop on SIGTERM:\n%s", s.out.String())
	}
	dir := filepath.Dir(s.cfg)
	for _, p := range procsUnder(dir) {
		t.Errorf("process left behind after shutdown: %s", p)
	}
	for _, h := range []string{"memory", "cpu", "pids", "unified", ""} {
		p := filepath.Join("/sys/fs/cgroup", h, "stoke", fmt.Sprint(pid))
		if _, err := os.Stat(p); err == nil {
			t.Errorf("cgroup left behind after shutdown: %s", p)
		}
	}
}

// procsUnder lists live processes whose executable lies under dir.
func procsUnder(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && strings.HasPrefix(exe, dir) {
			out = append(out, e.Name()+" "+exe)
		}
	}
	return out
}

func (s *stokeProc) cli(args ...string) (string, error) {
	args = append(args, "--file", s.cfg)
	out, err := exec.Command(s.bin, args...).CombinedOutput()
	return string(out), err
}

func (s *stokeProc) get(path string) (*http.Response, string) {
	s.t.Helper()
	resp, err := http.Get("http://" + s.gw + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestEndToEnd(t *testing.T) {
	stokeBin, hello := build(t)
	dir := t.TempDir()
	gw, adm := freeAddr(t), freeAddr(t)
	cfg := writeConfig(t, dir, gw, adm, hello, "hi")
	s := startStoke(t, stokeBin, cfg, gw)
	defer func() {
		if s.cmd.ProcessState == nil {
			s.stop()
		}
	}()

	// Scale from zero: the first request is a cold start, the next warm.
	resp, body := s.get("/hello")
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "hi from hello (version 1, 1769 MB)") {
		t.Fatalf("first request: %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Stoke-Cold") != "true" || !strings.Contains(resp.Header.Get("Server-Timing"), "init;dur=") {
		t.Errorf("first request should say it was cold: %v", resp.Header)
	}
	if resp, _ = s.get("/hello/x"); resp.Header.Get("X-Stoke-Cold") != "false" {
		t.Error("second request should be warm")
	}

	out, err := s.cli("ls")
	if err != nil || !strings.Contains(out, "hello") || !strings.Contains(out, "idle") {
		t.Errorf("stoke ls: %v\n%s", err, out)
	}
	// What hello's keep-alive policy (adaptive, the default) decided.
	if !regexp.MustCompile(`(?m)^hello\s+adaptive\s+\S+\s+\S+\s+-\s+0\s+0\s+0\s+[\d.]+$`).MatchString(out) {
		t.Errorf("stoke ls: no keep-alive row for hello:\n%s", out)
	}
	out, err = s.cli("invoke", "hello", "--path", "/hello/via-cli")
	if err != nil || !strings.Contains(out, "GET /hello/via-cli") {
		t.Errorf("stoke invoke: %v\n%s", err, out)
	}
	out, err = s.cli("invocations", "hello", "--cold")
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(out, " COLD ") || strings.Contains(out, "warm") {
		t.Errorf("stoke invocations --cold: %v\n%s", err, out)
	}
	out, err = s.cli("logs", "hello")
	if err != nil || !strings.Contains(out, "START RequestId: ") || !strings.Contains(out, "\tInit Duration: ") ||
		!strings.Contains(out, "\tBilled Duration: ") {
		t.Errorf("stoke logs: %v\n%s", err, out)
	}

	// A broken config is refused with file, line and key; nothing changes.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(mustRead(t, cfg), "memory: 1769", "memory: 64", 1)), 0o644)
	out, err = deployFile(stokeBin, bad)
	if err == nil || !strings.Contains(out, "bad.yaml:12: functions.hello.memory: 64 is out of range") {
		t.Errorf("bad deploy: %v\n%s", err, out)
	}
	// A failing build is refused with its output; version 1 keeps serving.
	os.WriteFile(bad, []byte(strings.Replace(mustRead(t, cfg), "build: cp", "build: echo compile error >&2; exit 3; cp", 1)), 0o644)
	out, err = deployFile(stokeBin, bad)
	if err == nil || !strings.Contains(out, "compile error") || !strings.Contains(out, "previous version keeps serving") {
		t.Errorf("failing build: %v\n%s", err, out)
	}
	if _, body = s.get("/hello"); !strings.Contains(body, "version 1") {
		t.Errorf("after failed deploy: %q", body)
	}

	// A real deploy under load drops nothing.
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := http.Get("http://" + gw + "/hello")
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
				if r.StatusCode != 200 {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	for deadline := time.Now().Add(20 * time.Second); ok.Load() < 10 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond) // traffic flowing before the deploy
	}
	writeConfig(t, dir, gw, adm, hello, "howdy")
	out, err = s.cli("deploy")
	// and after it, on the new version
	for deployed, deadline := ok.Load(), time.Now().Add(20*time.Second); ok.Load() < deployed+10 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if err != nil || !strings.Contains(out, "deployed  hello version 2") {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Errorf("during deploy: %d ok, %d failed", ok.Load(), failed.Load())
	}
	if _, body = s.get("/hello"); !strings.HasPrefix(body, "howdy from hello (version 2") {
		t.Errorf("after deploy: %q", body)
	}

	s.stop()
	if !strings.Contains(s.out.String(), "REPORT RequestId: ") {
		t.Errorf("serve should echo function logs:\n%s", s.out.String())
	}

	// A restart on the same data_dir serves the same functions, same version,
	// and keeps the records.
	s = startStoke(t, stokeBin, cfg, gw)
	if _, body = s.get("/hello"); !strings.Contains(body, "(version 2") {
		t.Errorf("after restart: %q", body)
	}
	out, err = s.cli("invocations", "hello", "-n", "1000")
	if err != nil || strings.Count(out, "\n") < 10 {
		t.Errorf("records lost across restart: %v\n%s", err, out)
	}
	s.stop()
}

func TestServeRefusesBadConfig(t *testing.T) {
	stokeBin, _ := build(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "stoke.yaml")
	os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nfunctions:\n  f:\n    runtime: http\n    command: [x]\n    memroy: 128\n"), 0o644)
	out, err := exec.Command(stokeBin, "serve", "-f", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "stoke.yaml:6: functions.f.memroy: unknown key") {
		t.Fatalf("want a config error naming file, line and key: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, ".stoke")); err == nil {
		t.Error("nothing should start (no data_dir created) on a config error")
	}
}

func TestHelp(t *testing.T) {
	stokeBin, _ := build(t)
	out, err := exec.Command(stokeBin, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "stoke serve -f examples/stoke.yaml") {
		t.Errorf("stoke --help: %v\n%s", err, out)
	}
	// "Start here" promises a cold start on echo's first request: true only
	// while the example keeps no echo instance warm (hello's keep_warm: 1
	// made the same promise about /hello untrue).
	if !strings.Contains(string(out), "curl -i localhost:8080/echo/hi                    # echo scales from zero: X-Stoke-Cold: true") {
		t.Errorf("stoke --help's start here lacks echo's cold start:\n%s", out)
	}
	if cfg, err := config.Load("../../examples/stoke.yaml"); err != nil || cfg.Functions["echo"] == nil || cfg.Functions["echo"].KeepWarm != 0 {
		t.Errorf("examples/stoke.yaml's echo must scale from zero for stoke --help's promise: %v", err)
	}
	for _, c := range []string{"serve", "deploy", "ls", "invoke", "logs", "invocations", "cost"} {
		out, err := exec.Command(stokeBin, c, "--help").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Usage:") {
			t.Errorf("stoke %s --help: %v\n%s", c, err, out)
		}
	}
}

func deployFile(bin, cfg string) (string, error) {
	out, err := exec.Command(bin, "deploy", "-f", cfg).CombinedOutput()
	return string(out), err
}

func mustRead(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
