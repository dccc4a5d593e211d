// Package admin serves Stoke's admin API: JSON for the CLI and the
// dashboard (package ui, mounted at /), behind a bearer token or the
// dashboard's login cookie, on its own listener.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stokehq/stoke/internal/admin/ui"
	"github.com/stokehq/stoke/internal/cache"
	"github.com/stokehq/stoke/internal/cost"
	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/store"
	"github.com/stokehq/stoke/internal/trace"
)

// FunctionInfo is one deployed function as `stoke ls` shows it.
type FunctionInfo struct {
	Name         string      `json:"name"`
	Runtime      string      `json:"runtime"`
	Version      string      `json:"version"`
	MemoryMB     int         `json:"memory_mb"`
	Timeout      string      `json:"timeout"`
	Concurrency  int         `json:"concurrency"`
	MaxInstances int         `json:"max_instances"`
	KeepWarm     int         `json:"keep_warm"`
	Routes       []string    `json:"routes"`
	Waiting      int         `json:"waiting"`
	Instances    []pool.Info `json:"instances"`
	// KeepAlive is what the keep-alive policy decided and did: the window
	// it keeps idle instances, its next pre-warm, its evictions.
	KeepAlive pool.KeepAliveInfo `json:"keep_alive"`
	// Snapshot is the python-wsgi template instances fork from, when running.
	Snapshot *runtime.Snapshot `json:"snapshot,omitempty"`
	// Cache is the response cache's counters, for a function with one.
	Cache *cache.Stats `json:"cache,omitempty"`
	// Health says whether its instances start: failing, with the last
	// error and the backoff, when they do not.
	Health pool.Health `json:"health"`
	// Node is the node the function runs on (cluster mode); Offered says
	// its idle instances are offered to the other nodes right now.
	Node    string `json:"node,omitempty"`
	Offered bool   `json:"offered,omitempty"`
}

// DeployResult says what a deploy changed.
type DeployResult struct {
	Deployed  map[string]string `json:"deployed"` // function → new version
	Unchanged []string          `json:"unchanged"`
	Removed   []string          `json:"removed"`
	Warnings  []string          `json:"warnings,omitempty"`
	// Runs says what runs each deployed function where that is worth
	// naming: the python interpreter, its version and frameworks.
	Runs map[string]string `json:"runs,omitempty"`
	// Failing are deployed functions whose instances cannot start (with
	// nothing older to serve instead), with why: they answer 502 with that
	// error while every other function serves.
	Failing map[string]string `json:"failing,omitempty"`
}

// Backend is what the admin API serves; the server implements it.
type Backend interface {
	Functions() []FunctionInfo
	// Deploy applies a config; a *DeployError means nothing changed.
	Deploy(ctx context.Context, path string, yaml []byte) (*DeployResult, error)
	// Invoke runs one request on a function, as the gateway would.
	Invoke(w http.ResponseWriter, r *http.Request, function string)
	Records(ctx context.Context, q store.Query) ([]record.Record, error)
	Logs(ctx context.Context, function string, afterSeq int64, limit int) ([]store.LogLine, error)
	TailLogs(ctx context.Context, function string, n int) ([]store.LogLine, error)
	// Cost prices the invocations of function ("" for all) in the last
	// `since`, with keep-warm advice.
	Cost(ctx context.Context, function string, since time.Duration) (*CostReport, error)
	// Metrics serves Prometheus' scrape.
	Metrics() http.Handler
	Tuner       // stoke tune (tune.go)
	CachePurger // stoke cache purge (cache.go)
	Eventer     // stoke events (events.go)
	Statuser    // the dashboard's banner (status.go)
	// Trace is the stored trace of a request (store.ErrNotFound, wrapped,
	// once it aged out); Traces the newest of a function, newest first.
	Trace(ctx context.Context, requestID string) (*trace.Trace, error)
	Traces(ctx context.Context, function string, limit int) ([]trace.Trace, error)
}

// CostReport is `stoke cost`: what the invocations in a window would cost
// on Lambda, per function.
type CostReport struct {
	Since     time.Time      `json:"since"`
	Until     time.Time      `json:"until"`
	Prices    cost.Prices    `json:"prices"`
	Functions []cost.Summary `json:"functions"`
}

// DeployError is a deploy refused before anything changed (bad config,
// failed build); its message is shown to the user as is.
type DeployError struct{ Msg string }

func (e *DeployError) Error() string { return e.Msg }

// Handler returns the admin API, requiring `Authorization: Bearer <token>`
// (or the dashboard's login cookie), and the dashboard at /.
func Handler(b Backend, token string) http.Handler {
	auth := ui.NewAuth(token)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/functions", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Functions())
	})
	mux.HandleFunc("POST /v1/deploy", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Path string `json:"path"`
			YAML string `json:"yaml"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&req); err != nil {
			writeErr(w, http.StatusBadRequest, "reading the deploy request: "+err.Error())
			return
		}
		res, err := b.Deploy(r.Context(), req.Path, []byte(req.YAML))
		var de *DeployError
		switch {
		case errors.As(err, &de):
			writeErr(w, http.StatusUnprocessableEntity, de.Msg)
		case err != nil:
			writeErr(w, http.StatusInternalServerError, err.Error())
		default:
			writeJSON(w, http.StatusOK, res)
		}
	})
	mux.HandleFunc("/v1/functions/{name}/invoke/{path...}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + r.PathValue("path")
		r2.URL.RawPath = ""
		r2.RequestURI = ""
		// The admin's credentials are not the function's to see.
		r2.Header.Del("Authorization")
		r2.Header.Del("Cookie")
		b.Invoke(sandboxed(w), r2, name)
	})
	mux.HandleFunc("GET /v1/functions/{name}/invocations", func(w http.ResponseWriter, r *http.Request) {
		q := store.Query{Function: r.PathValue("name"), ColdOnly: r.FormValue("cold") == "1", Limit: intParam(r, "limit", 50)}
		if s := r.FormValue("since"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil {
				writeErr(w, http.StatusBadRequest, "since: "+err.Error())
				return
			}
			q.Since = time.Now().Add(-d)
		}
		if s := r.FormValue("before"); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				writeErr(w, http.StatusBadRequest, fmt.Sprintf("before: %q is not a time like 2026-01-02T15:04:05.123456789Z (an invocation's Start)", s))
				return
			}
			q.Before = t
		}
		recs, err := b.Records(r.Context(), q)
		if err != nil {
			writeErr(w, http.StatusInternalServerError, err.Error())
			return
		}
		if recs == nil {
			recs = []record.Record{}
		}
		writeJSON(w, http.StatusOK, recs)
	})
	mux.HandleFunc("GET /v1/functions/{name}/logs", func(w http.ResponseWriter, r *http.Request) {
		serveLogs(w, r, b, r.PathValue("name"))
	})
	routeTune(mux, b)   // POST /v1/functions/{name}/tune, GET …/tune/latest
	routeCache(mux, b)  // POST /v1/functions/{name}/cache/purge
	routeEvents(mux, b) // GET /v1/functions/{name}/events, POST …/events/{id}/retry
	routeStatus(mux, b) // GET /v1/status
	mux.HandleFunc("GET /v1/traces/{requestId}", func(w http.ResponseWriter, r *http.Request) {
		t, err := b.Trace(r.Context(), r.PathValue("requestId"))
		switch {
		case errors.Is(err, store.ErrNotFound):
			writeErr(w, http.StatusNotFound, "no trace of request "+r.PathValue("requestId")+" (only the latest traces are kept)")
		case err != nil:
			writeErr(w, http.StatusInternalServerError, err.Error())
		default:
			writeJSON(w, http.StatusOK, t)
		}
	})
	mux.HandleFunc("GET /v1/functions/{name}/traces", func(w http.ResponseWriter, r *http.Request) {
		ts, err := b.Traces(r.Context(), r.PathValue("name"), min(max(intParam(r, "limit", 20), 1), 1000))
		if err != nil {
			writeErr(w, http.StatusInternalServerError, err.Error())
			return
		}
		if ts == nil {
			ts = []trace.Trace{}
		}
		writeJSON(w, http.StatusOK, ts)
	})
	mux.HandleFunc("GET /v1/cost", func(w http.ResponseWriter, r *http.Request) {
		since := 24 * time.Hour
		if s := r.FormValue("since"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				writeErr(w, http.StatusBadRequest, fmt.Sprintf("since: %q is not a positive duration like 24h or 30m", s))
				return
			}
			since = d
		}
		rep, err := b.Cost(r.Context(), r.FormValue("function"), since)
		if err != nil {
			writeErr(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, rep)
	})
	// Prometheus scrapes with the same bearer token as every other route
	// (authorization.credentials_file in its scrape config): the metrics
	// name every function and its traffic.
	mux.Handle("GET /metrics", b.Metrics())
	api := authenticate(auth, mux)
	// The dashboard's pages redirect to its login page instead of
	// answering 401, so only the API's paths go through authenticate.
	top := http.NewServeMux()
	top.Handle("/v1/", api)
	top.Handle("/metrics", api)
	top.Handle("/", ui.Handler(auth, func(ctx context.Context, name string) bool {
		for _, f := range b.Functions() {
			if f.Name == name {
				return true
			}
		}
		recs, err := b.Records(ctx, store.Query{Function: name, Limit: 1})
		return err != nil || len(recs) > 0 // on a store error, show the page and its error
	}))
	// The login cookie makes the API usable from a browser; refuse
	// cross-site unsafe requests (deploy, invoke) as defence in depth
	// behind SameSite=Strict. The CLI sends neither Origin nor
	// Sec-Fetch-Site, so it is unaffected.
	return http.NewCrossOriginProtection().Handler(top)
}

// serveLogs writes the function's log as JSON lines: the latest `limit`
// lines with tail=1, else those after seq `after`. With follow=1 it keeps the
// response open and polls for new lines; polling the store (rather than a
// live feed) gives each line exactly once, in order.
func serveLogs(w http.ResponseWriter, r *http.Request, b Backend, fn string) {
	after := int64(intParam(r, "after", 0))
	limit := intParam(r, "limit", 1000)
	var lines []store.LogLine
	var err error
	if r.FormValue("tail") == "1" {
		lines, err = b.TailLogs(r.Context(), fn, limit)
	} else {
		lines, err = b.Logs(r.Context(), fn, after, limit)
	}
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	write := func(lines []store.LogLine) error {
		for _, l := range lines {
			if err := enc.Encode(l); err != nil {
				return err
			}
			after = max(after, l.Seq)
		}
		return nil
	}
	_ = write(lines)
	if r.FormValue("follow") != "1" {
		return
	}
	rc := http.NewResponseController(w)
	t := time.NewTicker(followPoll)
	defer t.Stop()
	for {
		_ = rc.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
		lines, err := b.Logs(r.Context(), fn, after, 1000)
		if err != nil || write(lines) != nil {
			return
		}
	}
}

// followPoll is how often `stoke logs -f` looks for new lines.
const followPoll = 200 * time.Millisecond

// authenticate lets through requests with the admin token (bearer) or a
// dashboard session. A client address that sent wrong tokens too often
// lately is answered 429 before its token is looked at.
func authenticate(auth *ui.Auth, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auth.Authorized(r) {
			next.ServeHTTP(w, r)
			return
		}
		if auth.Limited(r) {
			w.Header().Set("Retry-After", "60")
			writeErr(w, http.StatusTooManyRequests, "too many wrong admin tokens from this address; try again in a minute")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !auth.Token(got) {
			if ok || r.Header.Get("Authorization") != "" {
				auth.Failed(r)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="stoke"`)
			writeErr(w, http.StatusUnauthorized, "missing or wrong admin token: send Authorization: Bearer <token> (the token is admin.token in stoke.yaml or the file admin-token in data_dir)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func intParam(r *http.Request, name string, def int) int {
	if v, err := strconv.Atoi(strings.TrimSpace(r.FormValue(name))); err == nil && v >= 0 {
		return v
	}
	return def
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
