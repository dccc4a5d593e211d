package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/runtime/httpwire"
)

// panicError is a panic while invoking, recovered by Run: Stoke's fault,
// not the function's.
type panicError struct{ v any }

func (e *panicError) Error() string { return fmt.Sprintf("internal error: panic: %v", e.v) }

var (
	errGatewayTimeout  = errors.New("gateway timeout")
	errFunctionTimeout = errors.New("function timeout")
	errNoFunction      = errors.New("no such function")
)

// acquireFailed says why a request got no instance.
func (g *Gateway) acquireFailed(ctx context.Context, name string, err error) Outcome {
	switch {
	case errors.Is(err, errNoFunction):
		return Outcome{Err: err, Status: http.StatusNotFound, ErrorType: "ResourceNotFoundException", Message: "Function not found: " + name}
	case errors.Is(err, pool.ErrThrottled):
		return Outcome{Err: err, Status: http.StatusTooManyRequests, ErrorType: "TooManyRequestsException", Message: "Rate Exceeded.", Throttled: true}
	case context.Cause(ctx) == errGatewayTimeout:
		return Outcome{Err: err, Status: http.StatusGatewayTimeout, ErrorType: "Gateway.Timeout",
			Message: fmt.Sprintf("gateway timed out after %s (gateway.timeout) while waiting for an instance of %s", g.o.Timeout, name)}
	case ctx.Err() != nil:
		return Outcome{Err: err, Status: 499, ErrorType: "Client.Closed", Message: "the client closed the request while it waited for an instance"}
	}
	e := runtime.AsError(err)
	out := Outcome{Err: err, Status: e.Status, ErrorType: e.Type, Message: e.Message}
	if out.Status == 0 {
		out.Status = http.StatusBadGateway
	}
	return out
}

// invokeFailed says why an invocation failed (ictx: its context) in out,
// and on its record.
func (g *Gateway) invokeFailed(out *Outcome, ictx context.Context, fn *Function, err error) {
	var mbe *http.MaxBytesError
	var invalid *httpwire.RequestError
	var pe *panicError
	switch {
	case errors.As(err, &pe):
		out.Status, out.ErrorType, out.Message = http.StatusInternalServerError, "Stoke.InternalError", pe.Error()
	case errors.As(err, &mbe):
		out.Status, out.ErrorType = http.StatusRequestEntityTooLarge, "RequestTooLargeException"
		out.Message = fmt.Sprintf("request body exceeds the limit of %d bytes", mbe.Limit)
	case errors.As(err, &invalid):
		out.Status, out.ErrorType, out.Message = http.StatusBadRequest, "InvalidRequestContentException", invalid.Error()
	case context.Cause(ictx) == errFunctionTimeout:
		out.Status, out.ErrorType = http.StatusGatewayTimeout, "Sandbox.Timedout"
		out.Message = fmt.Sprintf("Task timed out after %.2f seconds", fn.Timeout.Seconds())
	case context.Cause(ictx) == errGatewayTimeout:
		out.Status, out.ErrorType = http.StatusGatewayTimeout, "Gateway.Timeout"
		out.Message = fmt.Sprintf("gateway timed out after %s (gateway.timeout) while the function was running", g.o.Timeout)
	case ictx.Err() != nil:
		out.Status, out.ErrorType, out.Message = 499, "Client.Closed", "the client closed the request"
	default:
		e := runtime.AsError(err)
		out.Status, out.ErrorType, out.Message = e.Status, e.Type, e.Message
		if out.Status == 0 {
			out.Status = http.StatusBadGateway
		}
	}
	out.Record.ErrorType = out.ErrorType
	out.Record.ErrorMessage = out.Message
	out.Record.Status = out.Status
}

// writeFailure answers a failed invocation with a Lambda-style error.
func writeFailure(w http.ResponseWriter, out Outcome, reqID string) {
	if out.Throttled {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, out.ErrorType,
			fmt.Sprintf(`{"Reason":"ConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded.","requestId":%q}`, reqID))
		return
	}
	writeError(w, out.Status, out.ErrorType, out.Message, reqID)
}

// writeError answers with a Lambda-style JSON error body and says its type
// in x-amzn-ErrorType, as Lambda's APIs do.
func writeError(w http.ResponseWriter, status int, typ, msg, reqID string) {
	body := fmt.Sprintf(`{"errorType":%q,"errorMessage":%q,"requestId":%q}`, typ, msg, reqID)
	writeJSON(w, status, typ, body)
}

func writeJSON(w http.ResponseWriter, status int, typ, body string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-Errortype", typ)
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body + "\n"))
}
