package apigw

// An HTTP app's response → the proxy response a function returns to API Gateway.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// ResponseToEvent turns an HTTP app's response into the proxy response a function returns to
// API Gateway. A zero status means 200, as an http.Handler that never calls WriteHeader does.
func ResponseToEvent(format string, status int, h http.Header, body []byte) ([]byte, error) {
	if status == 0 {
		status = http.StatusOK
	}
	text, isB64 := encodeBody(h.Get("Content-Type"), h.Get("Content-Encoding"), body)
	var resp any
	switch format {
	case Format20:
		r := events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: map[string]string{}, Cookies: []string{},
			Body: text, IsBase64Encoded: isB64}
		for k, vs := range h {
			if http.CanonicalHeaderKey(k) == "Set-Cookie" {
				// Set-Cookie cannot be comma-joined: cookie dates contain commas.
				r.Cookies = append(r.Cookies, vs...)
				continue
			}
			r.Headers[strings.ToLower(k)] = strings.Join(vs, ",")
		}
		resp = r
	case Format10:
		r := events.APIGatewayProxyResponse{StatusCode: status, Headers: map[string]string{},
			MultiValueHeaders: map[string][]string{}, Body: text, IsBase64Encoded: isB64}
		for k, vs := range h {
			if len(vs) == 0 {
				continue
			}
			r.Headers[k] = vs[len(vs)-1]
			r.MultiValueHeaders[k] = slices.Clone(vs)
		}
		resp = r
	default:
		return nil, fmt.Errorf("apigw: unknown payload format %q", format)
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("apigw: encode %s response: %w", format, err)
	}
	return out, nil
}
