package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/stokehq/stoke/internal/tune"
)

// Tuner is `stoke tune`'s part of the Backend.
type Tuner interface {
	// Tune measures a function at several memory sizes on temporary
	// versions, calling progress after each invocation, and removes them
	// before it returns, also when ctx ends. A *TuneError is refused before
	// anything started.
	Tune(ctx context.Context, function string, plan tune.Plan, progress func(tune.Progress)) (*tune.Report, error)
	// LatestTune is the function's last finished tune, or nil.
	LatestTune(function string) *tune.Report
}

// TuneError is a tune refused before it started, with the status to answer.
type TuneError struct {
	Status int
	Msg    string
}

func (e *TuneError) Error() string { return e.Msg }

// TuneLine is one line of POST /v1/functions/{name}/tune's NDJSON answer:
// progress lines, then one result or error line.
type TuneLine struct {
	Progress *tune.Progress `json:"progress,omitempty"`
	Result   *tune.Report   `json:"result,omitempty"`
	Error    string         `json:"error,omitempty"`
}

// maxPlan bounds a tune plan: its request body or event is at most
// Lambda's 6 MB payload, base64 in JSON.
const maxPlan = 9 << 20

func routeTune(mux *http.ServeMux, b Tuner) {
	mux.HandleFunc("POST /v1/functions/{name}/tune", func(w http.ResponseWriter, r *http.Request) {
		// Read the whole body first: the server notices a client gone (and
		// cancels r.Context(), which stops the tune) only once it has.
		raw, err := io.ReadAll(io.LimitReader(r.Body, maxPlan))
		var plan tune.Plan
		if err == nil {
			err = json.Unmarshal(raw, &plan)
		}
		if err != nil {
			writeErr(w, http.StatusBadRequest, "reading the tune plan: "+err.Error())
			return
		}
		rc := http.NewResponseController(w)
		enc := json.NewEncoder(w)
		started := false
		line := func(l TuneLine) {
			if !started {
				w.Header().Set("Content-Type", "application/x-ndjson")
				w.WriteHeader(http.StatusOK)
				started = true
			}
			_ = enc.Encode(l)
			_ = rc.Flush()
		}
		rep, err := b.Tune(r.Context(), r.PathValue("name"), plan, func(p tune.Progress) { line(TuneLine{Progress: &p}) })
		var te *TuneError
		switch {
		case err != nil && !started && errors.As(err, &te):
			writeErr(w, te.Status, te.Msg)
		case err != nil && !started:
			writeErr(w, http.StatusInternalServerError, err.Error())
		case err != nil:
			line(TuneLine{Error: err.Error()})
		default:
			line(TuneLine{Result: rep})
		}
	})
	mux.HandleFunc("GET /v1/functions/{name}/tune/latest", func(w http.ResponseWriter, r *http.Request) {
		rep := b.LatestTune(r.PathValue("name"))
		if rep == nil {
			writeErr(w, http.StatusNotFound, "no tune of "+r.PathValue("name")+" since the server started (stoke tune "+r.PathValue("name")+")")
			return
		}
		writeJSON(w, http.StatusOK, rep)
	})
}
