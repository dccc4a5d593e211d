package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/gateway"
	"github.com/stokehq/stoke/internal/invokeapi"
)

// invokePrefix is where Lambda's Invoke API lives on the gateway listener
// (config refuses routes under it).
const invokePrefix = config.InvokeAPIPrefix

// frontDoor sends Invoke API calls to the Invoke API and everything else to
// the routes. A prefix test, not a mux, keeps the route path lean.
func frontDoor(api http.Handler, gw http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, invokePrefix) {
			api.ServeHTTP(w, r)
			return
		}
		gw.ServeHTTP(w, r)
	})
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

// Tail returns one invocation's log: its START line through its REPORT line,
// with the app's lines from the same instance in between.
func (b invokeBackend) Tail(ctx context.Context, function, requestID string) []string {
	if err := b.s.st.Flush(ctx); err != nil {
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

var _ invokeapi.Backend = invokeBackend{}
