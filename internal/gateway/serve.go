package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/runtime/httpwire"
	"github.com/stokehq/stoke/internal/trace"
)

// ServeHTTP routes by path.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fn := g.table.Load().match(r.URL.Path)
	if fn == nil {
		reqID := record.NewRequestID()
		w.Header().Set("X-Request-Id", reqID)
		w.Header().Set("X-Stoke-Cold", "false")
		writeError(w, http.StatusNotFound, "NotFound", "no function is routed at "+r.URL.Path, reqID)
		return
	}
	g.Invoke(w, r, fn.Name)
}

// Invoke runs one HTTP request on the named function, whatever its path.
func (g *Gateway) Invoke(w http.ResponseWriter, r *http.Request, name string) {
	reqID := record.NewRequestID()
	h := w.Header()
	h.Set("X-Request-Id", reqID)
	// Every response says whether it waited for a cold start; Ready (or a
	// failed start) sets it to what happened.
	h.Set("X-Stoke-Cold", "false")
	tooLarge := func(what string) {
		writeError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException",
			fmt.Sprintf("request body %s exceeds the limit of %d bytes", what, g.o.MaxBodyBytes), reqID)
	}
	if r.ContentLength > g.o.MaxBodyBytes {
		tooLarge(fmt.Sprintf("of %d bytes", r.ContentLength))
		return
	}
	if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
		// A body of unknown length (chunked) is read up to the limit before
		// the function is invoked, as API Gateway buffers it: streamed to an
		// app that answers without reading it, a larger one would pass.
		b, err := io.ReadAll(io.LimitReader(r.Body, g.o.MaxBodyBytes+1))
		switch {
		case int64(len(b)) > g.o.MaxBodyBytes:
			tooLarge("sent in chunks")
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, "InvalidRequestContentException", "reading the request body: "+err.Error(), reqID)
			return
		}
		r.Body, r.ContentLength, r.TransferEncoding = io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, g.o.MaxBodyBytes)
	}
	g.fwd.Apply(r)
	r.Header.Set("X-Request-Id", reqID)
	// The ids exist before the function runs, so it can join the trace.
	tc := trace.FromHeaders(r.Header)
	tc.Inject(r.Header)
	if fn := g.table.Load().byName[name]; fn != nil && fn.Cache != nil {
		g.serveCached(w, r, fn, reqID, tc)
		return
	}
	if _, err := g.forward(w, r, name, reqID, tc, h, "", 0); err != nil {
		// The response broke off midway: abort the connection so the client
		// cannot take a truncated body for a whole one.
		panic(http.ErrAbortHandler)
	}
}

// forward runs r on the named function: the function's response, or
// Stoke's error response, goes to w; Stoke's own fields (X-Stoke-Cold,
// Server-Timing) go to meta. cacheKind and lookup say what the response
// cache did first (none: ""). It returns the version that ran r and, when
// the response broke off after it started, the error.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, name, reqID string, tc trace.Context, meta http.Header, cacheKind string, lookup time.Duration) (string, error) {
	sw := &httpwire.Capture{W: w}
	out := g.Run(r.Context(), Call{
		Function: name, RequestID: reqID, Method: r.Method, Path: r.URL.Path, Trace: tc,
		Cache: cacheKind, Lookup: lookup,
		Ready: func(rec *record.Record) {
			if rec.Cold {
				meta.Set("Server-Timing", fmt.Sprintf("queue;dur=%.2f, init;dur=%.2f", rec.QueueMS, rec.InitMS))
			}
			meta.Set("X-Stoke-Cold", strconv.FormatBool(rec.Cold))
		},
		Do: func(ctx context.Context, inst runtime.Instance) error {
			if err := inst.Invoke(sw, r.WithContext(ctx)); err != nil {
				if nd, ok := runtime.AsNotDelivered(err); ok && len(nd.Body) > 0 {
					// Run tries another instance: it gets the body the
					// first one had read, then the rest.
					r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(nd.Body), r.Body))
				}
				return err
			}
			// Send the response now, not after the bookkeeping that follows.
			_ = http.NewResponseController(sw).Flush()
			return nil
		},
		Status: func() int { return sw.Status },
	})
	version := ""
	if out.Record != nil {
		version = out.Record.Version
	}
	if out.Err != nil && sw.Status == 0 {
		if out.Record != nil && out.Record.InstanceID == "" && strings.HasPrefix(out.ErrorType, "Runtime.") && !errors.Is(out.Err, pool.ErrFailing) {
			// The instance started for this request failed: it waited for
			// a cold start, which is what X-Stoke-Cold says (not so for a
			// failing function's answer at once).
			meta.Set("X-Stoke-Cold", "true")
		}
		writeFailure(sw, out, reqID)
	}
	if out.Err != nil && sw.Status != 0 && errors.Is(out.Err, http.ErrAbortHandler) {
		return version, out.Err
	}
	return version, nil
}
