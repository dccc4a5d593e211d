package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
	"github.com/stokehq/stoke/internal/server"
)

// Secrets at rest (docs/SECURITY.md, "Stoke's own files"): after a deploy
// and an invocation, no file in data_dir holds the admin token, an Invoke
// API secret key or an env value that came from ${VAR}, while the stored
// config and version do hold the rest of the function's settings.
func TestSecretsNotInDataDir(t *testing.T) {
	sandboxtest.CheckNoLeaks(t)
	const (
		token     = "admin-token-written-in-the-file-0123456789"
		key       = "invoke-api-secret-key-from-a-variable"
		envSecret = "env-value-from-a-variable-0123456789"
	)
	t.Setenv("STOKE_TEST_KEY", key)
	t.Setenv("STOKE_TEST_ENV_SECRET", envSecret)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: "127.0.0.1:0", token: %s}
invoke_api:
  credentials:
    - {access_key_id: AKIDSTOKETEST, secret_access_key: "${STOKE_TEST_KEY}"}
functions:
  f:
    runtime: http
    command: [%q]
    routes: [/f/*]
    env: {STOKE_SRV_APP: "1", DB_PASSWORD: "${STOKE_TEST_ENV_SECRET}", GREETING: plain-value-kept}
`, token, sandboxtest.InDir(t, dir))
	cfg, err := config.Parse(filepath.Join(dir, "stoke.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Functions["f"].Env["DB_PASSWORD"]; got != envSecret {
		t.Fatalf("the function's env has %q, want the variable's value", got)
	}
	s, err := server.Start(context.Background(), cfg, []byte(yaml), server.Options{Out: io.Discard})
	if err != nil {
		t.Fatalf("stoke did not start: %v", err)
	}
	resp, err := http.Get("http://" + s.GatewayAddr() + "/f/x")
	if err == nil {
		resp.Body.Close()
	}
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("GET /f/x: %v %v", err, resp)
	}
	// Closing flushes the records and log lines still batched.
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	var all []byte
	err = filepath.WalkDir(cfg.DataDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, secret := range []string{token, key, envSecret} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds the secret %q", p, secret)
			}
		}
		all = append(all, b...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The scan can see stored text: the config and version are there,
	// with what is not secret.
	for _, kept := range []string{"plain-value-kept", "AKIDSTOKETEST", "DB_PASSWORD"} {
		if !bytes.Contains(all, []byte(kept)) {
			t.Errorf("data_dir does not hold %q: the stored config or version is missing", kept)
		}
	}
}
