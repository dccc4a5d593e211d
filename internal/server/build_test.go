package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
	"github.com/stokehq/stoke/internal/server"
)

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The build runs with its ${VAR} references' values, and the "built" log
// line shows the command as written: a token the build needs is never in
// Stoke's log.
func TestBuiltLineHidesExpandedSecrets(t *testing.T) {
	sandboxtest.CheckNoLeaks(t)
	const token = "npm-token-0123456789abcdef"
	t.Setenv("STOKE_TEST_BUILD_TOKEN", token)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: "127.0.0.1:0"}
functions:
  f:
    runtime: http
    build: echo token=${STOKE_TEST_BUILD_TOKEN} > built.txt
    command: [%q]
    routes: [/f/*]
    env: {STOKE_SRV_APP: "1"}
`, sandboxtest.InDir(t, dir))
	cfg, err := config.Parse(filepath.Join(dir, "stoke.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	var log logBuffer
	s, err := server.Start(context.Background(), cfg, []byte(yaml), server.Options{Out: io.Discard, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatalf("stoke did not start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if b, err := os.ReadFile(filepath.Join(dir, "built.txt")); err != nil || string(b) != "token="+token+"\n" {
		t.Errorf("the build wrote %q (%v), want the token's value", b, err)
	}
	l := log.String()
	if !strings.Contains(l, `msg=built function=f command="echo token=${STOKE_TEST_BUILD_TOKEN} > built.txt"`) {
		t.Errorf("no built line with the command as written:\n%s", l)
	}
	if strings.Contains(l, token) {
		t.Errorf("the token is in Stoke's log:\n%s", l)
	}
}

// An isolated build sees a private /tmp in which, of the host's, only its
// cwd is shown: a project checked out under /tmp whose build reads a file
// above cwd (a fresh clone's `make run`: go build in examples/ needs the
// go.mod one level up) fails, and the deploy error must say why, since
// the build's own message ("go.mod file not found") does not.
func TestIsolatedBuildUnderTmpSaysWhy(t *testing.T) {
	if os.Geteuid() != 0 {
		sandboxtest.SkipWithoutCgroups(t, "isolation needs root")
	}
	sandboxtest.CheckNoLeaks(t)
	dir := t.TempDir()
	if !strings.HasPrefix(dir, "/tmp/") {
		t.Skipf("the test's temporary directory %s is not under /tmp", dir)
	}
	app := filepath.Join(dir, "app")
	if err := os.Mkdir(app, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "shared.txt"), []byte("above cwd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: "127.0.0.1:0"}
functions:
  f:
    runtime: http
    cwd: app
    build: cat ../shared.txt
    command: [%q]
    routes: [/f/*]
    env: {STOKE_SRV_APP: "1"}
`, sandboxtest.InDir(t, app))
	cfg, err := config.Parse(filepath.Join(dir, "stoke.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.Start(context.Background(), cfg, []byte(yaml), server.Options{Out: io.Discard, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		s.Close(context.Background())
		t.Fatal("the build read a file above its cwd in the host's /tmp")
	}
	t.Log(err)
	for _, want := range []string{"build of function f failed", "shared.txt", "Note: isolated builds see a private /tmp, in which only " + app + " (cwd)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}
}
