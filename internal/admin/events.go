package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Eventer is the Event invocations' part of the Backend: `stoke events`.
type Eventer interface {
	// Events lists a function's Event invocations with status ("" for
	// any), newest first.
	Events(ctx context.Context, function, status string, limit int) ([]EventInfo, error)
	// RetryEvent queues a failed event again; ErrNotFound or ErrNotFailed
	// (wrapped) when there is no such event of function or it has not
	// failed.
	RetryEvent(ctx context.Context, function string, id int64) (EventInfo, error)
}

// ErrNotFailed: only a failed event can be retried by hand.
var ErrNotFailed = errors.New("not failed")

// EventInfo is one Event invocation as the admin API shows it. A failed
// one is kept with what it needs to be understood and retried: its
// payload, its last error and its attempts (Lambda's on-failure
// destination).
type EventInfo struct {
	ID        int64  `json:"id"`
	RequestID string `json:"request_id"`
	Function  string `json:"function"`
	Qualifier string `json:"qualifier,omitempty"`
	// Version is the function's version when the event was accepted; it
	// runs on the current one.
	Version     string          `json:"version"`
	Status      string          `json:"status"` // queued, running, succeeded, failed
	Attempts    int             `json:"attempts"`
	Throttles   int             `json:"throttles"`
	Interrupted int             `json:"interrupted"`
	LastError   string          `json:"last_error,omitempty"`
	Payload     json.RawMessage `json:"payload"`
	Accepted    time.Time       `json:"accepted"`
	Updated     time.Time       `json:"updated"`
	NextAttempt time.Time       `json:"next_attempt,omitzero"`
	// Node is the cluster node that keeps the event's outcome (its id is
	// that node's; retry it there); empty on one node.
	Node string `json:"node,omitempty"`
}

var eventStatuses = map[string]bool{"": true, "queued": true, "running": true, "succeeded": true, "failed": true}

func routeEvents(mux *http.ServeMux, b Eventer) {
	mux.HandleFunc("GET /v1/functions/{name}/events", func(w http.ResponseWriter, r *http.Request) {
		status := r.FormValue("status")
		if !eventStatuses[status] {
			writeErr(w, http.StatusBadRequest, fmt.Sprintf("status: %q is not an event status; allowed: queued, running, succeeded, failed", status))
			return
		}
		evs, err := b.Events(r.Context(), r.PathValue("name"), status, min(max(intParam(r, "limit", 50), 1), 1000))
		if err != nil {
			writeErr(w, http.StatusInternalServerError, err.Error())
			return
		}
		if evs == nil {
			evs = []EventInfo{}
		}
		writeJSON(w, http.StatusOK, evs)
	})
	mux.HandleFunc("POST /v1/functions/{name}/events/{id}/retry", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			writeErr(w, http.StatusBadRequest, fmt.Sprintf("%q is not an event id; allowed: the ID column of stoke events %s --failed", r.PathValue("id"), name))
			return
		}
		ev, err := b.RetryEvent(r.Context(), name, id)
		switch {
		case errors.Is(err, ErrNotFound):
			writeErr(w, http.StatusNotFound, fmt.Sprintf("no event %d of function %s (stoke events %s lists them; failed ones are kept a week)", id, name, name))
		case errors.Is(err, ErrNotFailed):
			writeErr(w, http.StatusConflict, fmt.Sprintf("%v: only a failed event is retried by hand", err))
		case err != nil:
			writeErr(w, http.StatusInternalServerError, err.Error())
		default:
			writeJSON(w, http.StatusOK, ev)
		}
	})
}
