package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// A function whose keep_warm instances cannot start does not stop Stoke
// from serving: it is deployed failing, answers 502 with its init error at
// once, shows as failing in the admin API and /metrics, and every other
// function serves. A deploy retries it at once.
func TestBrokenFunctionIsContainedAtBoot(t *testing.T) {
	sandboxtest.CheckNoLeaks(t)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: "127.0.0.1:0"}
functions:
  ok:
    runtime: http
    command: [%q]
    memory: 1769
    routes: [/ok/*]
    env: {STOKE_SRV_APP: "1"}
  broken:
    runtime: http
    command: [sh, -c, "echo cannot open the database >&2; exit 3"]
    keep_warm: 1
    routes: [/broken]
`, sandboxtest.InDir(t, dir))
	path := filepath.Join(dir, "stoke.yaml")
	s := serve(t, dir, yaml) // starts next to the broken function, or fails t
	var cold string
	get := func(p string) (int, string) {
		resp, err := http.Get("http://" + s.GatewayAddr() + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		cold = resp.Header.Get("X-Stoke-Cold")
		return resp.StatusCode, string(b)
	}
	if code, body := get("/ok/x"); code != 200 || body != "hello /ok/x" {
		t.Errorf("the healthy function: %d %s", code, body)
	}
	begin := time.Now()
	code, body := get("/broken")
	if code != 502 || !strings.Contains(body, "cannot open the database") || !strings.Contains(body, "exit status 3") {
		t.Errorf("the broken function: %d %s", code, body)
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("the broken function's 502 took %s", took)
	}
	// Answered from the backoff (not by a start it waited on, which a
	// loaded machine may reach first): it waited for no init.
	if strings.Contains(body, "failing since") && cold != "false" {
		t.Errorf("a failing function's 502 at once waited for no init, but X-Stoke-Cold is %q", cold)
	}
	health := func() admin.FunctionInfo {
		_, b := adminReq(t, s, "GET", "/v1/functions", s.Token())
		var fns []admin.FunctionInfo
		if err := json.Unmarshal(b, &fns); err != nil {
			t.Fatal(err)
		}
		for _, f := range fns {
			if f.Name == "broken" {
				return f
			}
		}
		t.Fatalf("broken not listed: %s", b)
		return admin.FunctionInfo{}
	}
	if h := health().Health; !h.Failing || h.Failures < 2 || !strings.Contains(h.LastError, "cannot open the database") {
		t.Errorf("health: %+v", h)
	}
	mfs := scrape(t, s)
	if v := sample(t, mfs, "stoke_function_failing", "function", "broken"); v != 1 {
		t.Errorf("stoke_function_failing{broken} = %v", v)
	}
	if v := sample(t, mfs, "stoke_function_failing", "function", "ok"); v != 0 {
		t.Errorf("stoke_function_failing{ok} = %v", v)
	}
	if v := sample(t, mfs, "stoke_function_start_failures", "function", "broken"); v < 2 {
		t.Errorf("stoke_function_start_failures{broken} = %v", v)
	}
	// A deploy (the same config: nothing changed) retries it at once.
	before := health().Health.Failures
	if _, err := s.Deploy(context.Background(), path, []byte(yaml)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if h := health().Health; h.Failures > 0 && h.Failures <= before {
			break // reset to 0, then failed again
		}
		if time.Now().After(deadline) {
			t.Fatalf("no start after the deploy: %+v", health().Health)
		}
	}
}
