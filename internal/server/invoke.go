package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/gateway"
	"github.com/stokehq/stoke/internal/invokeapi"
	"github.com/stokehq/stoke/internal/runtime"
)

// invokePrefix is where Lambda's Invoke API lives on the gateway listener
// (config refuses routes under it).
const invokePrefix = config.InvokeAPIPrefix

// frontDoor sends Lambda API calls (Invoke, the read-only operations, and
// the others, which it refuses in Lambda's words) to the Invoke API and
// everything else to the routes. A prefix test first, not a mux, keeps the
// route path lean: only paths that start like a dated API version are
// matched further.
func frontDoor(api http.Handler, gw http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if invokePath(r.URL.Path) {
			api.ServeHTTP(w, r)
			return
		}
		gw.ServeHTTP(w, r)
	})
}

// invokePath says whether a path is the Invoke API's.
func invokePath(p string) bool {
	return strings.HasPrefix(p, invokePrefix) || (strings.HasPrefix(p, "/20") && invokeapi.LambdaPath(p))
}

// invokeBackend is the server as the Invoke API needs it.
type invokeBackend struct{ s *Server }

func (b invokeBackend) Run(ctx context.Context, c gateway.Call) gateway.Outcome {
	return b.s.gw.Run(ctx, c)
}

func (b invokeBackend) Lookup(name string) (string, bool) {
	fn := b.s.gw.Function(name)
	if fn == nil {
		return "", false
	}
	return fn.Version, true
}

// EventConfig is the function's Event settings as last deployed (they are
// not part of a version, so a deploy changing only them applies at once).
func (b invokeBackend) EventConfig(name string) (invokeapi.EventConfig, bool) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	if b.s.cfg == nil {
		return invokeapi.EventConfig{}, false
	}
	f := b.s.cfg.Functions[name]
	if f == nil {
		return invokeapi.EventConfig{}, false
	}
	return invokeapi.EventConfig{MaxRetryAttempts: f.MaxRetryAttempts, MaxEventAge: f.MaxEventAge}, true
}

// Tail returns one invocation's log: its START line through its REPORT line,
// with the app's lines from the same instance in between.
func (b invokeBackend) Tail(ctx context.Context, function, requestID string) []string {
	if err := b.s.flush(ctx); err != nil {
		return nil
	}
	lines, err := b.s.st.TailLogs(ctx, function, 500)
	if err != nil {
		return nil
	}
	var out []string
	instance := ""
	for _, l := range lines {
		switch {
		case instance == "" && strings.HasPrefix(l.Text, "START RequestId: "+requestID+" "):
			instance = l.Instance
			out = append(out, l.Text)
		case instance != "" && l.Instance == instance:
			out = append(out, l.Text)
			if strings.HasPrefix(l.Text, "REPORT RequestId: "+requestID) {
				return out
			}
		}
	}
	return out
}

// Functions lists the deployed functions for ListFunctions, GetFunction and
// GetFunctionConfiguration.
func (b invokeBackend) Functions() []invokeapi.Function {
	b.s.mu.Lock()
	fns := make([]*deployed, 0, len(b.s.fns))
	for _, d := range b.s.fns {
		fns = append(fns, d)
	}
	b.s.mu.Unlock()
	out := make([]invokeapi.Function, 0, len(fns))
	for _, d := range fns {
		f := d.cfg
		sum := sha256.Sum256([]byte(f.Fingerprint()))
		fn := invokeapi.Function{Name: f.Name, Version: strconv.Itoa(d.version), MemoryMB: f.Memory, EphemeralStorageMB: f.EphemeralStorage, Timeout: f.Timeout,
			Modified: d.deployedAt, CodeSha256: base64.StdEncoding.EncodeToString(sum[:]), Description: "stoke " + f.Runtime + " function"}
		switch f.Runtime {
		case "python-wsgi":
			fn.Runtime, fn.Handler = "python3", f.Python.Handler
			if fn.Handler == "" {
				fn.Handler = "django:" + f.Python.DjangoSettings
			}
			if sn, ok := d.rt.(runtime.Snapshotter); ok {
				if snap, ok := sn.Snapshot(); ok {
					fn.Runtime = pythonRuntime(snap.Interpreter)
				}
			}
		default:
			// A custom runtime (lambda) or a web app behind the adapter
			// (http): both run a command, as provided.al2023 does.
			fn.Runtime, fn.Handler = "provided.al2023", strings.Join(f.Command, " ")
		}
		out = append(out, fn)
	}
	return out
}

// pythonRuntime turns "/usr/bin/python3 3.11.2 (Django …)" into Lambda's
// identifier "python3.11".
func pythonRuntime(interp string) string {
	fields := strings.Fields(interp)
	if len(fields) >= 2 {
		if v := strings.Split(fields[1], "."); len(v) >= 2 {
			return "python" + v[0] + "." + v[1]
		}
	}
	return "python3"
}

var (
	_ invokeapi.Backend      = invokeBackend{}
	_ invokeapi.Catalog      = invokeBackend{}
	_ invokeapi.EventConfigs = invokeBackend{}
)
