package lambdart

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/stokehq/stoke/internal/lambdaspec"
	"github.com/stokehq/stoke/internal/runtime"
)

// response is POST /runtime/invocation/{id}/response: the function's answer.
func (in *Instance) response(w http.ResponseWriter, r *http.Request) {
	c, ok := in.answering(w, r, "InvocationResponse")
	if !ok {
		return
	}
	body, n, err := readPayload(r)
	if err != nil {
		// The bootstrap hung up mid-body; nobody is left to answer.
		in.rt.o.Logger.Debug("read invocation response", "instance", in.id, "err", err)
		return
	}
	var res *runtime.Result
	switch {
	case n > lambdaspec.MaxSyncPayload:
		res = functionError("Function.ResponseSizeTooLarge", fmt.Sprintf(
			"Response payload size (%d bytes) exceeded maximum allowed payload size (%d bytes).", n, lambdaspec.MaxSyncPayload))
	case r.Trailer.Get(hdrErrorType) != "":
		// aws-lambda-go streams a response and, if reading it fails midway,
		// names the error in trailers instead of the body.
		typ := r.Trailer.Get(hdrErrorType)
		doc, err := base64.StdEncoding.DecodeString(r.Trailer.Get(hdrErrorBody))
		if err != nil || len(doc) == 0 {
			doc = errorJSON(typ, "")
		}
		res = &runtime.Result{Payload: doc, FunctionError: "Unhandled", ErrorType: typ}
	default:
		res = &runtime.Result{Payload: body}
	}
	if !in.answer(c, res, connOf(w)) {
		renderForbidden(w, stateResponded, "InvocationResponse")
		return
	}
	if n > lambdaspec.MaxSyncPayload {
		renderTooLarge(w)
		return
	}
	renderAccepted(w)
}

// answering checks that the bootstrap may answer request r's id now, and
// answers the bootstrap itself (403 or 400, as the emulator does) if not.
func (in *Instance) answering(w http.ResponseWriter, r *http.Request, to string) (*call, bool) {
	in.mu.Lock()
	s, c := in.state, in.call
	in.mu.Unlock()
	switch {
	case s != stateInvoking:
		renderForbidden(w, s, to)
		return nil, false
	case c == nil || c.inv.RequestID != r.PathValue("id"):
		renderInvalidRequestID(w)
		return nil, false
	}
	return c, true
}

// answer completes c with res, posted on connection from, unless another
// post answered it first. InvokeEvent gets res before the bootstrap gets
// its 202, so an answer always beats the exit that may follow it. An
// answer on another connection than the one the invoker reads interrupts
// that read.
func (in *Instance) answer(c *call, res *runtime.Result, from *apiConn) bool {
	in.mu.Lock()
	if in.call != c || in.state != stateInvoking {
		in.mu.Unlock()
		return false
	}
	in.state = stateResponded
	in.call = nil
	in.free = make(chan struct{}) // until the next /next
	in.mu.Unlock()
	c.done <- res
	// Under the lock: once the invoker gives its connection back (and
	// clears reading) the read is no longer the invoker's to interrupt.
	in.mu.Lock()
	if r := in.reading; r != nil && r != from {
		_ = r.nc.SetReadDeadline(aLongTimeAgo)
	}
	in.mu.Unlock()
	return true
}

// readPayload reads up to lambdaspec.MaxSyncPayload bytes of r's body and counts the rest,
// so an oversized answer can be reported with its size.
func readPayload(r *http.Request) ([]byte, int64, error) {
	if n := r.ContentLength; n >= 0 && n <= lambdaspec.MaxSyncPayload {
		b := make([]byte, n)
		_, err := io.ReadFull(r.Body, b)
		return b, n, err
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r.Body, lambdaspec.MaxSyncPayload+1))
	if err != nil || n <= lambdaspec.MaxSyncPayload {
		return buf.Bytes(), n, err
	}
	rest, err := io.Copy(io.Discard, r.Body)
	return nil, n + rest, err
}

// functionError is a Result carrying an error document Stoke wrote itself.
func functionError(typ, msg string) *runtime.Result {
	return &runtime.Result{Payload: errorJSON(typ, msg), FunctionError: "Unhandled", ErrorType: typ}
}

func errorJSON(typ, msg string) []byte {
	b, _ := json.Marshal(errorDoc{ErrorMessage: msg, ErrorType: typ})
	return b
}
