package main_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The response cache through the real binary: hits, stoke ls, stoke trace
// of a hit, /metrics, stoke cache purge, and a deploy of a new version
// emptying the cache.
func TestCacheEndToEnd(t *testing.T) {
	stokeBin, hello := build(t)
	dir := t.TempDir()
	gw, adm := freeAddr(t), freeAddr(t)
	cfg := writeConfig(t, dir, gw, adm, hello, "hi")
	plain, _ := os.ReadFile(cfg)
	withCache := func(staleIfCold string) {
		s := strings.Replace(string(plain), "    env: {GREETING: hi}\n",
			"    env: {GREETING: hi}\n    cache: {max_bytes: 1MB, stale_if_cold: "+staleIfCold+"}\n", 1)
		if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	withCache("10m")
	s := startStoke(t, stokeBin, cfg, gw)
	defer func() {
		if s.cmd.ProcessState == nil {
			s.stop()
		}
	}()

	resp, first := s.get("/hello?max-age=60")
	// ttl 59 or 60: the app's Date has whole seconds, so the response
	// may be up to a second old when it arrives.
	if got := resp.Header.Get("Cache-Status"); got != "stoke; fwd=uri-miss; fwd-status=200; stored; ttl=60" && got != "stoke; fwd=uri-miss; fwd-status=200; stored; ttl=59" {
		t.Fatalf("first: Cache-Status %q", got)
	}
	resp, body := s.get("/hello?max-age=60")
	hitID := resp.Header.Get("X-Request-Id")
	if !strings.HasPrefix(resp.Header.Get("Cache-Status"), "stoke; hit; ttl=") || body != first || resp.Header.Get("Age") == "" {
		t.Fatalf("second: Cache-Status %q Age %q body %q", resp.Header.Get("Cache-Status"), resp.Header.Get("Age"), body)
	}
	// Not stored without a freshness: every request reaches the function.
	if resp, _ := s.get("/hello/plain"); !strings.Contains(resp.Header.Get("Cache-Status"), "detail=not-fresh") {
		t.Fatalf("plain: %q", resp.Header.Get("Cache-Status"))
	}

	out, err := s.cli("ls")
	if err != nil || !strings.Contains(out, "HIT RATIO") || !strings.Contains(out, "33%") {
		t.Fatalf("stoke ls: %v\n%s", err, out)
	}
	out, err = s.cli("trace", hitID)
	if err != nil || !strings.Contains(out, "cache") || !strings.Contains(out, "(hit)") || strings.Contains(out, "invoke") {
		t.Fatalf("stoke trace of a hit: %v\n%s", err, out)
	}
	out, err = s.cli("invocations", "hello")
	if err != nil || strings.Contains(out, hitID) {
		t.Fatalf("a hit is listed among the invocations: %v\n%s", err, out)
	}

	_, m := adminGet(t, dir, adm, "/metrics")
	for _, want := range []string{
		`stoke_cache_requests_total{function="hello",result="hit"} 1`,
		`stoke_cache_requests_total{function="hello",result="miss"} 2`,
		`stoke_cache_entries{function="hello"} 1`,
		`stoke_cache_evictions_total{function="hello"} 0`,
	} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	out, err = s.cli("cache", "purge", "hello", "--path", "/hello")
	if err != nil || !strings.Contains(out, "purged 1 entries") {
		t.Fatalf("purge: %v\n%s", err, out)
	}
	if resp, _ := s.get("/hello?max-age=60"); !strings.HasPrefix(resp.Header.Get("Cache-Status"), "stoke; fwd=uri-miss") {
		t.Fatalf("after the purge: %q", resp.Header.Get("Cache-Status"))
	}
	if out, err := s.cli("cache", "purge", "nope", "--all"); err == nil || !strings.Contains(out, "no function nope") {
		t.Fatalf("purge of an unknown function: %v\n%s", err, out)
	}
	// The entry stored again just above goes by its prefix; then nothing
	// is left for --all.
	if out, err := s.cli("cache", "purge", "hello", "--prefix", "/hel"); err != nil || !strings.Contains(out, "purged 1 entries") {
		t.Fatalf("purge --prefix: %v\n%s", err, out)
	}
	if out, err := s.cli("cache", "purge", "hello", "--all"); err != nil || !strings.Contains(out, "purged 0 entries") {
		t.Fatalf("purge --all: %v\n%s", err, out)
	}
	if out, err := s.cli("cache", "purge", "hello", "--path", "/hello", "--all"); err == nil || !strings.Contains(out, "exactly one of --path, --prefix or --all") {
		t.Fatalf("purge with two selectors: %v\n%s", err, out)
	}
	// The admin API checks what it is sent itself.
	for _, tc := range []struct {
		body string
		code int
		want string
	}{
		{`{"prefix": "/"}`, 200, `"purged": 0`},
		{`{"path": "/hello", "all": true}`, 400, "exactly one of path, prefix or all"},
		{`{}`, 400, "exactly one of path, prefix or all"},
		{`{"path": "hello"}`, 400, "path and prefix start with /"},
		{`{"prefix": "x"}`, 400, "path and prefix start with /"},
		{`not json`, 400, "reading the purge request"},
	} {
		code, body := adminPost(t, dir, adm, "/v1/functions/hello/cache/purge", tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("POST purge %s: %d %s, want %d %s", tc.body, code, body, tc.code, tc.want)
		}
	}
	if code, body := adminPost(t, dir, adm, "/v1/functions/nope/cache/purge", `{"all": true}`); code != 404 {
		t.Errorf("POST purge of an unknown function: %d %s", code, body)
	}

	// A changed cache block is a new version: its cache starts empty.
	withCache("1m")
	if out, err := s.cli("deploy"); err != nil || !strings.Contains(out, "deployed  hello version 2") {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	if resp, _ := s.get("/hello?max-age=60"); !strings.HasPrefix(resp.Header.Get("Cache-Status"), "stoke; fwd=uri-miss") {
		t.Fatalf("after a new version: %q", resp.Header.Get("Cache-Status"))
	}
	s.stop()
}

// adminPost is POST path with body on the admin API: status and body.
func adminPost(t *testing.T, dir, adm, path, body string) (int, string) {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(dir, "data", "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", "http://"+adm+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
