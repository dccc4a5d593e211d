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
