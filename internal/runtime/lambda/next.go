package lambdart

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// next is GET /runtime/invocation/next: the bootstrap's long poll for an
// event. The first one ends init. It parks the connection: the invoker
// writes the event to it (InvokeEvent). It never times out here; it ends
// when an event arrives or the instance stops.
func (in *Instance) next(w http.ResponseWriter, r *http.Request) {
	rw, ok := w.(*respWriter)
	if !ok {
		renderError(w, http.StatusInternalServerError, "ServiceException", "not a Runtime API connection")
		return
	}
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
	p := &parked{c: rw.c, w: rw, req: r, back: make(chan struct{})}
	rw.parked = p
	in.nexts = append(in.nexts, p)
	in.mu.Unlock()
	select {
	case in.parkedNext <- struct{}{}:
	default:
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
