package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
	"github.com/stokehq/stoke/internal/server"
	"github.com/stokehq/stoke/internal/server/servertest"
)

// The test binary doubles as the function's app.
func TestMain(m *testing.M) {
	sandbox.MaybeRunStub()
	servertest.MaybeRunHelloApp("STOKE_SRV_APP")
	sandboxtest.InOwnMountNamespace()
	os.Exit(m.Run())
}

func start(t *testing.T) *server.Server {
	t.Helper()
	sandboxtest.CheckNoLeaks(t)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: "127.0.0.1:0"}
functions:
  f:
    runtime: http
    command: [%q]
    memory: 1769
    routes: [/f/*]
    env: {STOKE_SRV_APP: "1"}
`, sandboxtest.InDir(t, dir))
	return serve(t, dir, yaml)
}

// serve is servertest.Serve, named short for this package's many tests.
func serve(t testing.TB, dir, yaml string) *server.Server { return servertest.Serve(t, dir, yaml) }

func adminReq(t *testing.T, s *server.Server, method, path, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+s.AdminAddr()+path, strings.NewReader(`{}`))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

var adminRoutes = [][2]string{
	{"GET", "/v1/functions"},
	{"POST", "/v1/deploy"},
	{"GET", "/v1/functions/f/invoke/f/x"},
	{"GET", "/v1/functions/f/invocations"},
	{"GET", "/v1/functions/f/logs"},
}

// Every admin route refuses a missing or wrong token; after five wrong
// tokens from this address within a minute it answers 429 instead.
func TestAdminRequiresToken(t *testing.T) {
	s := start(t)
	wrong := 0
	for _, r := range adminRoutes {
		for _, tok := range []string{"", "wrong", s.Token() + "x"} {
			resp, body := adminReq(t, s, r[0], r[1], tok)
			want, msg := http.StatusUnauthorized, "admin token"
			if wrong >= 5 {
				want, msg = http.StatusTooManyRequests, "too many wrong admin tokens"
			}
			if resp.StatusCode != want || !strings.Contains(string(body), msg) {
				t.Errorf("%s %s with token %q after %d wrong ones: %d %s", r[0], r[1], tok, wrong, resp.StatusCode, body)
			}
			if tok != "" {
				wrong++
			}
		}
	}
	if wrong < 6 {
		t.Fatalf("only %d wrong tokens sent", wrong)
	}
}

func TestAdminJSON(t *testing.T) {
	s := start(t)
	tok := s.Token()
	resp, body := adminReq(t, s, "GET", "/v1/functions/f/invoke/f/x", tok)
	if resp.StatusCode != 200 || string(body) != "hello /f/x" || resp.Header.Get("X-Stoke-Cold") != "true" {
		t.Fatalf("invoke: %d %q %v", resp.StatusCode, body, resp.Header)
	}

	// The gateway releases the instance and records the invocation after
	// writing the response: wait for both (waitFor, metrics_test.go), then
	// check what the last poll saw.
	var fns []map[string]any
	waitFor(func() bool {
		fns = nil
		_, body = adminReq(t, s, "GET", "/v1/functions", tok)
		if err := json.Unmarshal(body, &fns); err != nil || len(fns) != 1 {
			t.Fatalf("functions: %v %s", err, body)
		}
		ins, _ := fns[0]["instances"].([]any)
		return len(ins) == 1 && ins[0].(map[string]any)["state"] == "idle"
	})
	f := fns[0]
	if f["name"] != "f" || f["runtime"] != "http" || f["version"] != "1" || f["memory_mb"] != 1769.0 {
		t.Errorf("function JSON: %s", body)
	}
	ins, _ := f["instances"].([]any)
	if len(ins) != 1 || ins[0].(map[string]any)["state"] != "idle" || ins[0].(map[string]any)["pid"].(float64) <= 0 {
		t.Errorf("instances JSON: %s", body)
	}

	var recs []map[string]any
	waitFor(func() bool {
		recs = nil
		_, body = adminReq(t, s, "GET", "/v1/functions/f/invocations?cold=1", tok)
		if err := json.Unmarshal(body, &recs); err != nil {
			t.Fatalf("invocations: %v %s", err, body)
		}
		return len(recs) >= 1
	})
	if len(recs) != 1 {
		t.Fatalf("invocations: %s", body)
	}
	if recs[0]["Cold"] != true || recs[0]["Status"] != 200.0 || recs[0]["InitMS"].(float64) <= 0 {
		t.Errorf("record JSON: %s", body)
	}

	// The log has the app's line between START and REPORT.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body = adminReq(t, s, "GET", "/v1/functions/f/logs", tok)
		lines := strings.Split(strings.TrimSpace(string(body)), "\n")
		var texts []string
		for _, l := range lines {
			var ll struct{ Text, Stream string }
			if json.Unmarshal([]byte(l), &ll) == nil {
				texts = append(texts, ll.Text)
			}
		}
		all := strings.Join(texts, "\n")
		if strings.Contains(all, "app saw /f/x") && strings.Contains(all, "REPORT RequestId: ") {
			if strings.Index(all, "START RequestId") > strings.Index(all, "app saw /f/x") {
				t.Errorf("app line before START:\n%s", all)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log lines missing:\n%s", all)
		}
		time.Sleep(50 * time.Millisecond)
	}

	resp, body = adminReq(t, s, "POST", "/v1/deploy", tok)
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("deploy of an empty config path: %d %s", resp.StatusCode, body)
	}
}
