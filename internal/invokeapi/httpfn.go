package invokeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/stokehq/stoke/internal/apigw"
	"github.com/stokehq/stoke/internal/lambdaspec"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/runtime/httpwire"
)

// passThroughPath is where an event that is not an API Gateway proxy event
// is POSTed to an http function: Lambda Web Adapter's default
// AWS_LWA_PASS_THROUGH_PATH.
const passThroughPath = "/events"

// invokeHTTP runs an event on an http function the way Lambda Web Adapter
// does. An API Gateway proxy event (1.0 or 2.0) becomes the HTTP request it
// describes and the app's response becomes the matching proxy response.
// Any other event is POSTed as JSON to /events and the app's response body
// is the result; as Stoke's addition, a 5xx answer there is a function
// error, so Event invocations of such an app are retried as Lambda retries
// failed handlers.
func invokeHTTP(ctx context.Context, inst runtime.Instance, c call) (*runtime.Result, error) {
	var req *http.Request
	format := ""
	if isProxyEvent(c.payload) {
		var err error
		req, format, err = apigw.RequestFromEvent(ctx, c.payload)
		if err != nil {
			// The event is the caller's mistake, but the function got it:
			// Lambda Web Adapter would fail the invocation the same way.
			return &runtime.Result{Payload: errorDoc("Runtime.InvalidEvent", err.Error()),
				FunctionError: "Unhandled", ErrorType: "Runtime.InvalidEvent"}, nil
		}
	} else {
		var err error
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, passThroughPath, bytes.NewReader(c.payload))
		if err != nil {
			return nil, fmt.Errorf("invokeapi: building pass-through request: %w", err)
		}
		req.Host = "localhost"
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Request-Id", c.reqID)
	c.trace.Inject(req.Header)

	bw := &httpwire.Capture{Limit: lambdaspec.MaxSyncPayload}
	if err := inst.Invoke(bw, req); err != nil {
		return nil, err
	}
	status := bw.Status
	if status == 0 {
		status = http.StatusOK
	}
	if bw.Truncated {
		return &runtime.Result{
			Payload:       errorDoc("Function.ResponseSizeTooLarge", fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", lambdaspec.MaxSyncPayload)),
			FunctionError: "Unhandled", ErrorType: "Function.ResponseSizeTooLarge",
		}, nil
	}
	if format == "" {
		if status >= 500 {
			return &runtime.Result{Payload: errorDoc("Function.HTTPError",
				fmt.Sprintf("%s answered %d %s: %s", passThroughPath, status, http.StatusText(status), truncate(bw.Body.String(), 1024))),
				FunctionError: "Unhandled", ErrorType: "Function.HTTPError"}, nil
		}
		return &runtime.Result{Payload: bw.Body.Bytes()}, nil
	}
	payload, err := apigw.ResponseToEvent(format, status, bw.Header(), bw.Body.Bytes())
	if err != nil {
		return nil, fmt.Errorf("invokeapi: converting the response to a %s proxy response: %w", format, err)
	}
	return &runtime.Result{Payload: payload}, nil
}

// isProxyEvent says whether payload is an API Gateway proxy event, by the
// fields apigw.RequestFromEvent detects the format by.
func isProxyEvent(payload []byte) bool {
	var probe struct {
		Version    string `json:"version"`
		HTTPMethod string `json:"httpMethod"`
	}
	if json.Unmarshal(payload, &probe) != nil {
		return false
	}
	return probe.Version == apigw.Format20 || probe.HTTPMethod != ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
