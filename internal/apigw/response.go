package apigw

// The function's proxy response → the HTTP response API Gateway answers with.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/aws/aws-lambda-go/events"
)

// errorBody is what API Gateway answers when it cannot make sense of a function's response.
const errorBody = `{"message": "Internal server error"}`

// WriteHTTPResponse writes the function's response payload to w the way API Gateway would for
// the given format. A payload API Gateway would reject is answered with its 502; the returned error
// then says why, for the caller's logs, and the response has already been written.
func WriteHTTPResponse(w http.ResponseWriter, format string, payload []byte) error {
	var fields map[string]json.RawMessage
	isObject := json.Unmarshal(payload, &fields) == nil
	_, hasStatus := fields["statusCode"]
	switch format {
	case Format20:
		if !json.Valid(payload) {
			writeBadGateway(w)
			return fmt.Errorf("apigw: function response is not JSON")
		}
		if !isObject || !hasStatus {
			// HTTP API's documented guess: valid JSON without a statusCode is the body itself.
			w.Header().Set("Content-Type", "application/json")
			writeResponse(w, http.StatusOK, payload)
			return nil
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(payload, &resp); err != nil {
			writeBadGateway(w)
			return fmt.Errorf("apigw: decode 2.0 response: %w", err)
		}
		return writeProxyResponse(w, resp.StatusCode, resp.Headers, nil, resp.Cookies, resp.Body, resp.IsBase64Encoded)
	case Format10:
		if !isObject || !hasStatus {
			writeBadGateway(w)
			return fmt.Errorf("apigw: 1.0 response is not an object with a statusCode")
		}
		var resp events.APIGatewayProxyResponse
		if err := json.Unmarshal(payload, &resp); err != nil {
			writeBadGateway(w)
			return fmt.Errorf("apigw: decode 1.0 response: %w", err)
		}
		return writeProxyResponse(w, resp.StatusCode, resp.Headers, resp.MultiValueHeaders, nil, resp.Body, resp.IsBase64Encoded)
	default:
		writeBadGateway(w)
		return fmt.Errorf("apigw: unknown payload format %q", format)
	}
}

func writeProxyResponse(w http.ResponseWriter, status int, headers map[string]string, multi map[string][]string,
	cookies []string, body string, isB64 bool) error {
	if status < 100 || status > 599 {
		writeBadGateway(w)
		return fmt.Errorf("apigw: function returned status code %d", status)
	}
	raw := []byte(body)
	if isB64 {
		var err error
		if raw, err = base64.StdEncoding.DecodeString(body); err != nil {
			writeBadGateway(w)
			return fmt.Errorf("apigw: decode base64 body: %w", err)
		}
	}
	h := w.Header()
	for k, vs := range multi {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	// REST API merges headers into multiValueHeaders, keeping a pair that is in both only once.
	for k, v := range headers {
		if !slices.Contains(h.Values(k), v) {
			h.Add(k, v)
		}
	}
	for _, c := range cookies {
		h.Add("Set-Cookie", c)
	}
	writeResponse(w, status, raw)
	return nil
}

// writeResponse sends status and body with a length the gateway computed itself: the function's
// own framing headers describe a body that no longer exists in that form.
func writeResponse(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Del("Transfer-Encoding")
	h.Del("Connection")
	h.Del("Content-Length")
	if _, ok := h["Content-Type"]; !ok {
		// Keep net/http from sniffing a type API Gateway would not have sent.
		h["Content-Type"] = nil
	}
	noBody := status < 200 || status == http.StatusNoContent || status == http.StatusNotModified
	if !noBody {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	if !noBody && len(body) > 0 {
		_, _ = w.Write(body) // the client went away; nothing left to tell it
	}
}

func writeBadGateway(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-Errortype", "InternalServerErrorException")
	writeResponse(w, http.StatusBadGateway, []byte(errorBody))
}
