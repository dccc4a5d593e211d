package server

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// arrivals tracks the connections whose first request has not reached a
// handler yet. Shutdown drops such a request: net/http's connection loop
// returns without answering when it finds the server shutting down after
// reading one, and the gateway's connection loop (frontconn) closes a
// connection that waits for its first. A connection the accept queue just
// gave up (quiesce) is one of these, so shutdownHTTP waits for them before
// calling Shutdown; the handler's entry, an idle keep-alive or the
// connection's end takes one off (frontconn: its Accepted and Settled).
//
// A mutex and one map: per-connection atomic flags (no lock per request)
// were measured and dropped, ~0.05 µs of a ~290 µs request
// (docs/BENCHMARKS.md, "http warm path: the profile's cuts", row 6).
type arrivals struct {
	mu      sync.Mutex
	pending map[net.Conn]struct{}
}

type connKey struct{}

// serve installs a on srv: its connection-state hook, the connection in
// each request's context and the handler's entry.
func (a *arrivals) serve(srv *http.Server) {
	a.pending = map[net.Conn]struct{}{}
	srv.ConnState = a.connState
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, c)
	}
	h := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
			a.done(c)
		}
		h.ServeHTTP(w, r)
	})
}

func (a *arrivals) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		a.add(c)
	case http.StateIdle, http.StateHijacked, http.StateClosed:
		a.done(c)
	}
}

// add counts c: accepted, its first request not handled yet.
func (a *arrivals) add(c net.Conn) {
	a.mu.Lock()
	a.pending[c] = struct{}{}
	a.mu.Unlock()
}

func (a *arrivals) done(c net.Conn) {
	a.mu.Lock()
	delete(a.pending, c)
	a.mu.Unlock()
}

// waiting is how many connections have a first request not yet handled.
func (a *arrivals) waiting() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending)
}
