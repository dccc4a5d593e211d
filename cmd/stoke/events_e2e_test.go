package main_test

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// stoke events through the real binary: an Event whose function cannot
// serve it fails for good and is kept (payload, error, attempts), listed
// by --failed, shown with --payload, and queued again by --retry once the
// function is fixed; bad ids and names get clear errors.
func TestEventsFailedAndRetry(t *testing.T) {
	stokeBin, hello := build(t)
	dir := t.TempDir()
	gw, adm := freeAddr(t), freeAddr(t)
	cfg := writeConfig(t, dir, gw, adm, hello, "hi")
	// worker starts only once the file ok exists in its directory.
	appendConfig(t, cfg, `  worker:
    runtime: http
    command: [sh, -c, "test -e ./ok || { echo the queue is not configured >&2; exit 3; }; exec ./hello-bin"]
    memory: 1769
    maximum_retry_attempts: 0
invoke_api:
  auth: none
`)
	s := startStoke(t, stokeBin, cfg, gw)
	defer s.stop()

	req, _ := http.NewRequest("POST", "http://"+gw+"/2015-03-31/functions/worker/invocations", strings.NewReader(`{"order":8}`))
	req.Header.Set("X-Amz-Invocation-Type", "Event")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("event: %d", resp.StatusCode)
	}
	// Polls `stoke events ARGS` until its output matches re.
	waitEvents := func(re *regexp.Regexp, args ...string) []string {
		t.Helper()
		var out string
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			var err error
			out, err = s.cli(append([]string{"events", "worker"}, args...)...)
			if m := re.FindStringSubmatch(out); err == nil && m != nil {
				return m
			}
			if time.Now().After(deadline) {
				t.Fatalf("stoke events worker %v: %v\n%s", args, err, out)
			}
		}
	}
	// ID, accepted (date time), request id, version 1, failed, 1 attempt.
	row := regexp.MustCompile(`(?m)^(\d+)\s+\S+ \S+\s+(\S+)\s+1\s+failed\s+1\s+0\s+0\s+Runtime\.ExitError`)
	m := waitEvents(row, "--failed")
	id, reqID := m[1], m[2]
	// The whole error, the app's own words in it, under the table.
	waitEvents(regexp.MustCompile(`(?m)^event `+id+` last error:\n.*exit status 3.*the queue is not configured`), "--failed")
	if out, err := s.cli("events", "worker", "--failed", "--payload"); err != nil ||
		!strings.Contains(out, "event "+id+" payload:\n{\"order\":8}") {
		t.Errorf("--payload: %v\n%s", err, out)
	}

	// Bad input: a retry of nothing, of a non-id, of an unknown function;
	// a list of an unknown function.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"events", "worker", "--retry", "999"}, "no event 999 of function worker"},
		{[]string{"events", "worker", "--retry", "-3"}, `"-3" is not an event id`},
		{[]string{"events", "worker", "--retry", "0"}, `"0" is not an event id`},
		{[]string{"events", "nope"}, "no function nope is deployed at http://" + adm},
		{[]string{"events", "worker", "--failed", "--status", "queued"}, "--failed and --status queued: choose one"},
		{[]string{"events", "worker", "--status", "lost"}, "allowed: queued, running, succeeded, failed"},
	} {
		if out, err := s.cli(c.args...); err == nil || !strings.Contains(out, c.want) {
			t.Errorf("stoke %v: %v\n%s", c.args, err, out)
		}
	}

	// Fixed and deployed again (a deploy retries a failing function at
	// once), then retried by hand: it runs, once, as the same request.
	if err := os.WriteFile(filepath.Join(dir, "ok"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := s.cli("deploy"); err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	if out, err := s.cli("events", "worker", "--retry", id); err != nil ||
		!strings.Contains(out, "queued event "+id+" (request "+reqID+") of worker again") {
		t.Fatalf("--retry: %v\n%s", err, out)
	}
	waitEvents(regexp.MustCompile(`(?m)^`+id+`\s+\S+ \S+\s+`+reqID+`\s+1\s+succeeded\s+1\s`), "--status", "succeeded")
	if out, err := s.cli("events", "worker", "--failed"); err != nil || strings.TrimSpace(out) != "No failed events of worker." {
		t.Errorf("--failed after the retry: %v\n%s", err, out)
	}
	if out, err := s.cli("events", "worker", "--retry", id); err == nil || !strings.Contains(out, "only a failed event is retried by hand") {
		t.Errorf("a second --retry: %v\n%s", err, out)
	}
}
