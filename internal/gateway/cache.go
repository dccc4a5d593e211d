package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/stokehq/stoke/internal/cache"
	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/runtime/httpwire"
	"github.com/stokehq/stoke/internal/trace"
)

// HitRecorder, when the Recorder implements it too, receives the record of
// every request a response cache answered without invoking the function
// (Record.FromCache): no START/REPORT lines, nothing billed.
type HitRecorder interface {
	Hit(r *record.Record)
}

// serveCached answers r through fn's response cache. The gateway timeout
// starts here, so a request waiting for another's invocation of the same
// key waits no longer than one waiting for an instance would.
func (g *Gateway) serveCached(w http.ResponseWriter, r *http.Request, fn *Function, reqID string, tc trace.Context) {
	begin := time.Now()
	ctx, cancel := context.WithTimeoutCause(r.Context(), g.o.Timeout, errGatewayTimeout)
	defer cancel()
	w.Header().Set("X-Stoke-Cold", "false") // a forward that waited for an init says true
	sw := &httpwire.Capture{W: w}
	o := &origin{g: g, name: fn.Name, reqID: reqID, tc: tc, client: w.Header()}
	res := fn.Cache.Serve(sw, r.WithContext(ctx), o)
	if o.forwarded {
		return // the invocation has its own record
	}
	end := time.Now()
	rec := &record.Record{
		RequestID: reqID, Function: fn.Name, Version: fn.Version, Start: begin, End: end,
		MemoryMB: fn.MemoryMB, Status: sw.Status, Method: r.Method, Path: r.URL.Path,
		Cache: string(res), CacheMS: ms(end.Sub(begin)), FromCache: true,
	}
	if res == cache.Failed {
		rec.ErrorType = sw.Header().Get("X-Amzn-Errortype")
	}
	tc.Stamp(rec)
	if hr, ok := g.o.Recorder.(HitRecorder); ok {
		hr.Hit(rec)
	}
	if g.o.Tracer != nil {
		g.o.Tracer.Trace(rec)
	}
}

// origin is a function as its cache sees it, for one request.
type origin struct {
	g      *Gateway
	name   string
	reqID  string
	tc     trace.Context
	client http.Header // the client's response fields, for Stoke's own
	// forwarded: the request itself was invoked (not a background refresh).
	forwarded bool
}

func (o *origin) Forward(w http.ResponseWriter, r *http.Request, f cache.Forward) (string, error) {
	if !f.Background {
		o.forwarded = true
		return o.g.forward(w, r, o.name, o.reqID, o.tc, o.client, f.Kind, f.Lookup)
	}
	// The cache's own refresh: a new invocation, with its own id and
	// trace, whose fields go nowhere.
	reqID, tc := record.NewRequestID(), trace.NewContext()
	r.Header = r.Header.Clone()
	r.Header.Set("X-Request-Id", reqID)
	tc.Inject(r.Header)
	return o.g.forward(w, r, o.name, reqID, tc, http.Header{}, "refresh", 0)
}

// Warm asks the function's current pool (a deploy may have replaced the
// one the request started with).
func (o *origin) Warm() bool {
	fn := o.g.table.Load().byName[o.name]
	return fn != nil && fn.Pool.Idle()
}

func (o *origin) Fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, cache.ErrNotCached):
		writeError(w, http.StatusGatewayTimeout, "Gateway.NotCached",
			"only-if-cached: no stored response of "+o.name+" can answer this request", o.reqID)
	case errors.Is(err, errGatewayTimeout):
		writeError(w, http.StatusGatewayTimeout, "Gateway.Timeout",
			fmt.Sprintf("gateway timed out after %s (gateway.timeout) while waiting for another request's invocation of %s", o.g.o.Timeout, o.name), o.reqID)
	default:
		writeError(w, 499, "Client.Closed", "the client closed the request while it waited for another request's invocation", o.reqID)
	}
}
