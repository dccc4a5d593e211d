package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// An Event that fails for good is kept with its payload, error and
// attempts, listed by the admin API, and queued again by hand.
func TestFailedEventKeptAndRetried(t *testing.T) {
	sandboxtest.CheckNoLeaks(t)
	dir := t.TempDir()
	app := filepath.Base(sandboxtest.InDir(t, dir))
	// Starts only once the file ok exists in its directory.
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: "127.0.0.1:0"}
invoke_api: {auth: none}
functions:
  worker:
    runtime: http
    command: [sh, -c, "test -e ./ok || { echo the queue is not configured >&2; exit 3; }; exec ./%s"]
    memory: 1769
    maximum_retry_attempts: 0
    env: {STOKE_SRV_APP: "1"}
`, app)
	path := filepath.Join(dir, "stoke.yaml")
	s := serve(t, dir, yaml)
	req, _ := http.NewRequest("POST", "http://"+s.GatewayAddr()+"/2015-03-31/functions/worker/invocations", strings.NewReader(`{"order":8}`))
	req.Header.Set("X-Amz-Invocation-Type", "Event")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("event: %v %v", err, resp)
	}
	resp.Body.Close()
	events := func(q string) []admin.EventInfo {
		_, b := adminReq(t, s, "GET", "/v1/functions/worker/events"+q, s.Token())
		var evs []admin.EventInfo
		if err := json.Unmarshal(b, &evs); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		return evs
	}
	var failed []admin.EventInfo
	for deadline := time.Now().Add(20 * time.Second); len(failed) == 0; time.Sleep(20 * time.Millisecond) {
		if failed = events("?status=failed"); time.Now().After(deadline) {
			t.Fatalf("no failed event: %+v", events(""))
		}
	}
	ev := failed[0]
	var compact bytes.Buffer
	_ = json.Compact(&compact, ev.Payload)
	if compact.String() != `{"order":8}` || ev.Attempts != 1 || ev.Version != "1" ||
		!strings.Contains(ev.LastError, "the queue is not configured") {
		t.Errorf("failed event: %+v", ev)
	}
	if resp, body := adminReq(t, s, "GET", "/v1/functions/worker/events?status=lost", s.Token()); resp.StatusCode != 400 ||
		!strings.Contains(string(body), "allowed: queued, running, succeeded, failed") {
		t.Errorf("bad status: %d %s", resp.StatusCode, body)
	}
	if resp, body := adminReq(t, s, "POST", "/v1/functions/worker/events/999/retry", s.Token()); resp.StatusCode != 404 {
		t.Errorf("retry of no event: %d %s", resp.StatusCode, body)
	}
	// Fixed, deployed again (which retries the failing function at once),
	// and retried by hand: it runs.
	if err := os.WriteFile(filepath.Join(dir, "ok"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Deploy(context.Background(), path, []byte(yaml)); err != nil {
		t.Fatal(err)
	}
	if resp, body := adminReq(t, s, "POST", fmt.Sprintf("/v1/functions/worker/events/%d/retry", ev.ID), s.Token()); resp.StatusCode != 200 {
		t.Fatalf("retry: %d %s", resp.StatusCode, body)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if evs := events("?status=succeeded"); len(evs) == 1 && evs[0].ID == ev.ID {
			if evs[0].Attempts != 1 {
				t.Errorf("succeeded after a retry by hand: %+v", evs[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the retried event did not succeed: %+v", events(""))
		}
	}
	if resp, body := adminReq(t, s, "POST", fmt.Sprintf("/v1/functions/worker/events/%d/retry", ev.ID), s.Token()); resp.StatusCode != 409 ||
		!strings.Contains(string(body), "is succeeded") {
		t.Errorf("retry of a succeeded event: %d %s", resp.StatusCode, body)
	}
}
