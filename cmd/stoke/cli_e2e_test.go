package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestCLIFriendly runs the real binary the way a newcomer would: from a
// directory without a stoke.yaml, with -f meaning the file everywhere,
// asking for things that are not there, and deploying an app that exits
// at start.
func TestCLIFriendly(t *testing.T) {
	stokeBin, hello := build(t)
	dir := t.TempDir()
	gw, adm := freeAddr(t), freeAddr(t)
	cfg := writeConfig(t, dir, gw, adm, hello, "hi")
	elsewhere := t.TempDir()
	run := func(wd string, args ...string) (string, error) {
		cmd := exec.Command(stokeBin, args...)
		cmd.Dir = wd
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	// stoke check: the config, its routes and its commands, without serving.
	out, err := run(dir, "check", "-f", cfg)
	if err != nil || !strings.Contains(out, "/hello/*  hello     http") || !strings.Contains(out, "hello: command ") ||
		!strings.Contains(out, "is not built yet") || !strings.Contains(out, ": OK") {
		t.Errorf("check: %v\n%s", err, out)
	}
	if strings.Contains(out, "running as root") {
		t.Errorf("check that runs no code warned of root:\n%s", out)
	}
	out, err = run(dir, "check", "-f", cfg, "--build")
	if err != nil || !strings.Contains(out, "hello: built") || strings.Contains(out, "not built yet") {
		t.Errorf("check --build: %v\n%s", err, out)
	}
	// The build ran as whoever ran check, outside the sandbox: as root, it says so first.
	if root := os.Geteuid() == 0; strings.Contains(out, "warning: running as root: the builds and python imports below run as root") != root {
		t.Errorf("check --build as uid %d: the root warning is there: %v\n%s", os.Geteuid(), !root, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(mustRead(t, cfg), "runtime: http", "runtime: htp", 1)), 0o644)
	out, err = run(dir, "check", "-f", bad)
	if err == nil || !strings.Contains(out, `functions.hello.runtime: "htp" is not a supported runtime (did you mean http?)`) {
		t.Errorf("check of a bad config: %v\n%s", err, out)
	}

	// No stoke.yaml here: every command says which file it looked for.
	for _, args := range [][]string{{"ls"}, {"check"}, {"deploy"}, {"logs", "hello"}} {
		out, err := run(elsewhere, args...)
		if err == nil || !strings.Contains(out, "no config file stoke.yaml (looked for "+filepath.Join(elsewhere, "stoke.yaml")+")") ||
			!strings.Contains(out, "-f examples/stoke.yaml") {
			t.Errorf("stoke %v without a config: %v\n%s", args, err, out)
		}
	}
	// The server is not running: the address and where it came from.
	out, err = run(elsewhere, "ls", "-f", cfg, "--token", "x")
	if err == nil || !strings.Contains(out, "cannot reach Stoke's admin API at http://"+adm+" (from admin.listen in "+cfg+")") {
		t.Errorf("ls with no server: %v\n%s", err, out)
	}

	s := startStoke(t, stokeBin, cfg, gw)
	defer s.stop()
	out, err = run(elsewhere, "ls", "-f", cfg, "--token", "wrong")
	if err == nil || !strings.Contains(out, "refused the token from --token") {
		t.Errorf("ls with a wrong token: %v\n%s", err, out)
	}
	// Empty results say so; an unknown function is named as such.
	if out, err := s.cli("invocations", "hello"); err != nil || strings.TrimSpace(out) != "No invocations of hello recorded." {
		t.Errorf("invocations before any request: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"invocations", "nope"}, {"logs", "nope"}, {"invoke", "nope"}} {
		if out, err := s.cli(args...); err == nil || !strings.Contains(out, "no function nope is deployed at http://"+adm+"; deployed: hello") {
			t.Errorf("stoke %v: %v\n%s", args, err, out)
		}
	}
	// A trace asked for right after its response is waited for.
	resp, _ := s.get("/hello")
	id := resp.Header.Get("X-Request-Id")
	if out, err := s.cli("trace", id); err != nil || !strings.Contains(out, "gateway") || !strings.Contains(out, "invoke") {
		t.Errorf("trace right after the request: %v\n%s", err, out)
	}
	if out, err := s.cli("trace", "no-such-request", "--wait", "300ms"); err == nil || !strings.Contains(out, "no trace of request no-such-request") {
		t.Errorf("trace of nothing: %v\n%s", err, out)
	}
	// A timeout is logged as Lambda logs it, between START and END.
	resp, _ = s.get("/hello/sleep?ms=2500")
	tid := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != 504 || resp.Header.Get("X-Stoke-Cold") == "" {
		t.Errorf("timeout: %d %v", resp.StatusCode, resp.Header)
	}
	waitLog := func(want string) string {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			out, _ := s.cli("logs", "hello", "-n", "50")
			if strings.Contains(out, want) || time.Now().After(deadline) {
				return out
			}
		}
	}
	logs := waitLog("END RequestId: " + tid)
	timedOut := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.\d{3} \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ` + tid + ` Task timed out after 2\.00 seconds\n\d\d:\d\d:\d\d\.\d{3} END RequestId: ` + tid + `$`)
	if !timedOut.MatchString(logs) || strings.Contains(logs, "(status 504)") {
		t.Errorf("timeout's log lines:\n%s", logs)
	}

	// -f is the file on logs too; the old `logs NAME -f` still follows,
	// with a line saying so (here stopped by its timeout).
	if out, err := run(elsewhere, "logs", "hello", "-f", cfg); err != nil || !strings.Contains(out, "START RequestId:") {
		t.Errorf("logs -f FILE: %v\n%s", err, out)
	}
	cmd := exec.Command("timeout", "2", stokeBin, "logs", "hello", "--file", cfg, "-f")
	out2, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out2), "-f on logs now names the config file") || !strings.Contains(string(out2), "START RequestId:") {
		t.Errorf("legacy logs -f:\n%s", out2)
	}

	// An app that exits at start (new: nothing older to serve) is deployed
	// failing, said at once with its cause; deploy exits 1; the others serve.
	crash := filepath.Join(dir, "crash.yaml")
	os.WriteFile(crash, []byte(mustRead(t, cfg)+`  crash:
    runtime: http
    command: [sh, -c, "echo cannot open the database >&2; exit 3"]
    keep_warm: 1
    routes: [/crash]
`), 0o644)
	out, err = run(dir, "deploy", "-f", crash)
	if err == nil || !strings.Contains(out, "failing   crash: an instance failed to start") ||
		!strings.Contains(out, "exit status 3") || !strings.Contains(out, "cannot open the database") ||
		!strings.Contains(out, "1 function(s) deployed but failing") {
		t.Errorf("deploy of a crashing app: %v\n%s", err, out)
	}
	if resp, body := s.get("/crash"); resp.StatusCode != 502 || !strings.Contains(body, "cannot open the database") {
		t.Errorf("a failing function's request: %d %s", resp.StatusCode, body)
	}
	if resp, _ := s.get("/hello"); resp.StatusCode != 200 {
		t.Errorf("hello next to a failing function: %d", resp.StatusCode)
	}
	if out, err := run(dir, "ls", "-f", crash); err != nil || !strings.Contains(out, "FAILING crash:") || !strings.Contains(out, "exit status 3") {
		t.Errorf("ls with a failing function: %v\n%s", err, out)
	}
	if strings.Contains(out, "deadline exceeded") {
		t.Errorf("the deploy waited for a timeout:\n%s", out)
	}
}
