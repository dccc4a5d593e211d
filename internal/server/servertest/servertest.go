// Package servertest starts a real Stoke server in a test (internal/server's
// own, the dashboard's) and lets a test binary double as a function's app.
package servertest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/server"
)

// Serve starts a server on the config text yaml, as if read from
// dir/stoke.yaml, and closes it when t ends (failing t if Close fails).
func Serve(t testing.TB, dir, yaml string) *server.Server {
	t.Helper()
	path := filepath.Join(dir, "stoke.yaml")
	cfg, err := config.Parse(path, []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.Start(context.Background(), cfg, []byte(yaml), server.Options{Out: io.Discard})
	if err != nil {
		t.Fatalf("stoke did not start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}

// MaybeRunHelloApp makes the test binary a function's app when the
// environment variable env is "1": on 127.0.0.1:$PORT it answers every
// request "hello PATH" and prints "app saw PATH" to its stdout (the
// function's log), until it is killed. Call it first thing in TestMain,
// after sandbox.MaybeRunStub; otherwise it returns at once.
func MaybeRunHelloApp(env string) {
	if os.Getenv(env) != "1" {
		return
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("app saw", r.URL.Path)
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	})
	_ = http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil)
	os.Exit(0)
}
