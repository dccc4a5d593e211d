package main_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// examples/stoke.yaml's Django app keeps working isolated, as the config's
// comments say: its build (migrate) and its instances run as the
// function's own user with a read-only cwd, and SQLite lives in the
// granted writable: [var]. A note posted is stored there and read back.
func TestExampleDjangoIsolated(t *testing.T) {
	if os.Geteuid() != 0 {
		sandboxtest.SkipWithoutCgroups(t, "isolation needs root")
	}
	stokeBin, _ := build(t)
	dir := t.TempDir()
	proj := filepath.Join(dir, "django-drf")
	if err := os.CopyFS(proj, os.DirFS("../../examples/django-drf")); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(proj, "var")) // one a local `make run` made: the deploy creates it
	example, err := os.ReadFile("../../examples/stoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, api, ok := strings.Cut(string(example), "\n  api:\n")
	if !ok {
		t.Fatal("examples/stoke.yaml has no function api")
	}
	gw, adm := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(dir, "stoke.yaml")
	text := "listen: " + gw + "\nadmin: {listen: " + adm + "}\ndata_dir: data\nfunctions:\n  api:\n" + api
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startStoke(t, stokeBin, cfg, gw)
	defer s.stop()
	if strings.Contains(s.out.String(), "NOT ISOLATED") {
		t.Fatalf("stoke runs as root but does not isolate:\n%s", s.out.String())
	}

	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		resp, body := s.get("/api/notes/")
		if resp.StatusCode == 200 && body == "[]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /api/notes/: %d %s\n%s", resp.StatusCode, body, s.out.String())
		}
	}
	resp, err := http.Post("http://"+gw+"/api/notes/", "application/json", strings.NewReader(`{"title":"hi","body":"isolated"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/notes/: %d\n%s", resp.StatusCode, s.out.String())
	}
	if resp, body := s.get("/api/notes/"); resp.StatusCode != 200 || !strings.Contains(body, `"body":"isolated"`) {
		t.Errorf("GET /api/notes/ after the POST: %d %s", resp.StatusCode, body)
	}
	// The database is in the granted path, on disk, owned by the path's
	// owner (Stoke chowns nothing).
	fi, err := os.Stat(filepath.Join(proj, "var", "db.sqlite3"))
	if err != nil || fi.Size() == 0 {
		t.Errorf("var/db.sqlite3: %v", err)
	}
	if _, err := os.Stat(filepath.Join(proj, "db.sqlite3")); err == nil {
		t.Error("a db.sqlite3 was written into the read-only cwd")
	}
	if out, err := s.cli("ls"); err != nil || !strings.Contains(out, "api") {
		t.Errorf("stoke ls: %v\n%s", err, out)
	}
}
