package lambdart

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/stokehq/stoke/internal/apigw"
	"github.com/stokehq/stoke/internal/lambdaspec"
	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/runtime/httpwire"
)

// Invoke serves an HTTP route the way API Gateway fronts a Lambda
// function: the request becomes a proxy event in the function's
// EventFormat, and the function's proxy response becomes the HTTP response.
// A function error is answered 502 {"message": "Internal server error"}, as
// API Gateway answers it, and returns nil (the instance stays usable);
// failures that leave nothing written (request too large, process exit,
// timeout) are returned for the caller to answer.
func (in *Instance) Invoke(w http.ResponseWriter, r *http.Request) error {
	if err := httpwire.Validate(r); err != nil {
		return fmt.Errorf("invoke instance %s: %w", in.id, err)
	}
	body, err := readRequest(r)
	if err != nil {
		return err
	}
	reqID := r.Header.Get("X-Request-Id")
	if reqID == "" {
		reqID = record.NewRequestID()
	}
	format := in.rt.o.Function.EventFormat
	if format == "" {
		format = apigw.Format20
	}
	now := time.Now()
	event, err := apigw.EventFromHTTP(r, body, format, apigw.RequestInfo{
		RequestID: reqID, AccountID: in.rt.o.AccountID, Time: now,
	})
	if err != nil {
		return runtime.Errorf("Runtime.Unknown", http.StatusBadGateway, "build %s event: %v", format, err)
	}
	if len(event) > lambdaspec.MaxSyncPayload {
		return tooLarge(len(event))
	}
	inv := &runtime.Invocation{RequestID: reqID, Payload: event, TraceID: r.Header.Get("X-Amzn-Trace-Id")}
	if d, ok := r.Context().Deadline(); ok {
		inv.Deadline = d
	}
	res, err := in.InvokeEvent(r.Context(), inv)
	if nd, ok := runtime.AsNotDelivered(err); ok {
		nd.Body = body // read already: a retry on another instance sends it
	}
	if err != nil {
		return err
	}
	if res.FunctionError != "" {
		in.rt.o.Logger.Info("function error", "function", in.rt.o.Function.Name, "instance", in.id,
			"request_id", reqID, "error_type", res.ErrorType, "error", string(truncate(res.Payload, 4096)))
		writeInternalServerError(w)
		return nil
	}
	if err := apigw.WriteHTTPResponse(w, format, res.Payload); err != nil {
		// It has answered 502 already, as API Gateway does for a malformed
		// proxy response; the function is at fault, not the instance.
		in.rt.o.Logger.Info("malformed function response", "function", in.rt.o.Function.Name,
			"instance", in.id, "request_id", reqID, "err", err)
	}
	return nil
}

// readRequest reads the request body, refusing one over Lambda's
// synchronous payload limit before the event is even built.
func readRequest(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > lambdaspec.MaxSyncPayload {
		return nil, tooLarge(int(r.ContentLength))
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(r.Body, lambdaspec.MaxSyncPayload+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge(int(mbe.Limit) + 1)
	case err != nil:
		return nil, fmt.Errorf("read request body: %w", err)
	case n > lambdaspec.MaxSyncPayload:
		return nil, tooLarge(int(n))
	}
	return buf.Bytes(), nil
}

// tooLarge is the Invoke API's error for an oversized request, in its words.
func tooLarge(n int) error {
	return runtime.Errorf("RequestTooLargeException", http.StatusRequestEntityTooLarge,
		"Request must be smaller than %d bytes for the InvokeFunction operation (got at least %d bytes)", lambdaspec.MaxSyncPayload, n)
}

// writeInternalServerError is API Gateway's answer when the integration
// failed: the same body and error type apigw writes for a malformed response.
func writeInternalServerError(w http.ResponseWriter) {
	const body = `{"message": "Internal server error"}`
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-Errortype", "InternalServerErrorException")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusBadGateway)
	io.WriteString(w, body)
}
