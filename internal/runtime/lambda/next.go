package lambdart

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// next is GET /runtime/invocation/next: the bootstrap's long poll for an
// event. The first one ends init. It never times out here; it ends when an
// event arrives, the bootstrap hangs up or the instance stops.
func (in *Instance) next(w http.ResponseWriter, r *http.Request) {
	in.mu.Lock()
	switch in.state {
	case stateInvoking, stateInitFailed:
		s := in.state
		in.mu.Unlock()
		renderForbidden(w, s, "Ready")
		return
	case stateStarted:
		in.firstNext = time.Now()
		close(in.ready)
	case stateResponded:
		close(in.free)
	}
	in.state = stateReady
	in.mu.Unlock()

	var c *call
	select {
	case c = <-in.events:
	case <-r.Context().Done():
		return
	case <-in.stop:
		return
	}
	in.mu.Lock()
	in.state = stateInvoking
	in.mu.Unlock()

	inv := c.inv
	h := w.Header()
	h[hdrRequestID] = []string{inv.RequestID}
	h[hdrDeadline] = []string{c.deadline}
	arn := inv.FunctionARN
	if arn == "" {
		arn = in.rt.arn
	}
	h[hdrFunctionARN] = []string{arn}
	trace := inv.TraceID
	if trace == "" {
		trace = newTraceID(time.Now())
	}
	h[hdrTraceID] = []string{trace}
	if inv.ClientContext != "" {
		h[hdrClientContext] = []string{decodeClientContext(inv.ClientContext)}
	}
	if inv.CognitoIdentity != "" {
		h[hdrCognitoIdentity] = []string{inv.CognitoIdentity}
	}
	h["Content-Type"] = jsonType
	h["Content-Length"] = []string{strconv.Itoa(len(inv.Payload))}
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(inv.Payload); err != nil {
		in.redeliver(c)
	}
}

// redeliver puts back an event whose delivery failed (the bootstrap hung
// up mid-response), so its next /next gets it instead of a 403.
func (in *Instance) redeliver(c *call) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.call == c && in.state == stateInvoking {
		in.state = stateReady
		select {
		case in.events <- c:
		default:
		}
	}
}

// newTraceID makes an X-Ray trace header of the form Lambda passes when the
// caller sent none. Not a secret, so a fast PRNG will do.
func newTraceID(now time.Time) string {
	return fmt.Sprintf("Root=1-%08x-%08x%016x;Parent=%016x;Sampled=0",
		now.Unix(), rand.Uint32(), rand.Uint64(), rand.Uint64())
}

// decodeClientContext turns the Invoke API's base64 X-Amz-Client-Context
// into the JSON runtimes expect in Lambda-Runtime-Client-Context; anything
// that is not base64 is passed on as it came.
func decodeClientContext(s string) string {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return s
	}
	return string(b)
}
