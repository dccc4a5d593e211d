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

	bw := &bufferWriter{h: http.Header{}}
	if err := inst.Invoke(bw, req); err != nil {
		return nil, err
	}
	status := bw.status
	if status == 0 {
		status = http.StatusOK
	}
	if bw.overflow {
		return &runtime.Result{
			Payload:       errorDoc("Function.ResponseSizeTooLarge", fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", lambdaspec.MaxSyncPayload)),
			FunctionError: "Unhandled", ErrorType: "Function.ResponseSizeTooLarge",
		}, nil
	}
	if format == "" {
		if status >= 500 {
			return &runtime.Result{Payload: errorDoc("Function.HTTPError",
				fmt.Sprintf("%s answered %d %s: %s", passThroughPath, status, http.StatusText(status), truncate(bw.buf.String(), 1024))),
				FunctionError: "Unhandled", ErrorType: "Function.HTTPError"}, nil
		}
		return &runtime.Result{Payload: bw.buf.Bytes()}, nil
	}
	payload, err := apigw.ResponseToEvent(format, status, bw.h, bw.buf.Bytes())
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

// bufferWriter keeps an app's response in memory, up to Lambda's response
// limit; past it the rest is dropped and overflow set, so the proxy still
// completes and the caller can answer Lambda's size error.
type bufferWriter struct {
	h        http.Header
	status   int
	buf      bytes.Buffer
	overflow bool
}

func (b *bufferWriter) Header() http.Header { return b.h }

func (b *bufferWriter) WriteHeader(code int) {
	if b.status == 0 && code >= 200 {
		b.status = code
	}
}

func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if b.overflow || b.buf.Len()+len(p) > lambdaspec.MaxSyncPayload {
		b.overflow = true
		return len(p), nil
	}
	return b.buf.Write(p)
}

// Flush is a no-op: the response is delivered whole. It exists so the
// reverse proxy's flushes of streamed responses succeed.
func (b *bufferWriter) Flush() {}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
