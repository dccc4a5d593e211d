package apigw

// HTTP request → API Gateway event: what API Gateway sends a function for a request.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// EventFromHTTP builds the event API Gateway would send for r. body is the request body already
// read by the caller (r.Body is not touched), because the gateway reads it once to enforce its size limit.
func EventFromHTTP(r *http.Request, body []byte, format string, info RequestInfo) ([]byte, error) {
	if info.Time.IsZero() {
		info.Time = time.Now()
	}
	if info.SourceIP == "" {
		info.SourceIP = hostOnly(r.RemoteAddr)
	}
	h := forwardedHeaders(r, body)
	text, isB64 := encodeBody(h.Get("Content-Type"), h.Get("Content-Encoding"), body)
	var ev any
	switch format {
	case Format20:
		v2 := eventV2(r, h, text, isB64, info)
		ev = eventV2Out{APIGatewayV2HTTPRequest: v2, RequestContext: requestContextV2Out{APIGatewayV2HTTPRequestContext: v2.RequestContext}}
	case Format10:
		ev = eventV1(r, h, text, isB64, info)
	default:
		return nil, fmt.Errorf("apigw: unknown payload format %q", format)
	}
	out, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("apigw: encode %s event: %w", format, err)
	}
	return out, nil
}

// eventV2Out is a payload 2.0 event as API Gateway writes it: without
// requestContext.authentication when the request brought no client
// certificate (aws-lambda-go's struct has no omitempty that works there and
// would write an empty mTLS clientCert block). The shallower fields shadow
// the embedded ones when encoded.
type eventV2Out struct {
	events.APIGatewayV2HTTPRequest
	RequestContext requestContextV2Out `json:"requestContext"`
}

type requestContextV2Out struct {
	events.APIGatewayV2HTTPRequestContext
	Authentication *events.APIGatewayV2HTTPRequestContextAuthentication `json:"authentication,omitempty"`
}

// forwardedHeaders returns r's headers as the function sees them behind API Gateway: Host is a
// header again and the body has a length (API Gateway buffers it). The X-Forwarded-* and
// Forwarded fields are r's own: the gateway set them by its one policy (httpwire.Forwarding).
func forwardedHeaders(r *http.Request, body []byte) http.Header {
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if r.Host != "" {
		h.Set("Host", r.Host)
	}
	if len(body) > 0 && h.Get("Content-Length") == "" {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	return h
}

func eventV2(r *http.Request, h http.Header, body string, isB64 bool, info RequestInfo) events.APIGatewayV2HTTPRequest {
	stage := info.Stage
	if stage == "" {
		stage = "$default"
	}
	headers := make(map[string]string, len(h))
	var cookies []string
	for k, vs := range h {
		if http.CanonicalHeaderKey(k) == "Cookie" {
			cookies = append(cookies, splitCookies(vs)...)
			continue
		}
		// API Gateway lower-cases names and joins repeats with a bare comma.
		name := strings.ToLower(k)
		if prev, ok := headers[name]; ok {
			vs = append([]string{prev}, vs...)
		}
		headers[name] = strings.Join(vs, ",")
	}
	var qs map[string]string
	for _, kv := range parseQuery(r.URL.RawQuery) {
		if qs == nil {
			qs = map[string]string{}
		}
		if prev, ok := qs[kv[0]]; ok {
			qs[kv[0]] = prev + "," + kv[1]
		} else {
			qs[kv[0]] = kv[1]
		}
	}
	return events.APIGatewayV2HTTPRequest{
		Version:               Format20,
		RouteKey:              "$default",
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        escapeInvalidUTF8(r.URL.RawQuery),
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: qs,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     "$default",
			AccountID:    info.AccountID,
			Stage:        stage,
			RequestID:    info.RequestID,
			APIID:        APIID,
			DomainName:   r.Host,
			DomainPrefix: domainPrefix(r.Host),
			Time:         info.Time.UTC().Format(timeLayout),
			TimeEpoch:    info.Time.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  info.SourceIP,
				UserAgent: r.UserAgent(),
			},
		},
		Body:            body,
		IsBase64Encoded: isB64,
	}
}

func eventV1(r *http.Request, h http.Header, body string, isB64 bool, info RequestInfo) events.APIGatewayProxyRequest {
	stage := info.Stage
	if stage == "" {
		stage = "prod"
	}
	headers := make(map[string]string, len(h))
	multi := make(map[string][]string, len(h))
	for k, vs := range h {
		if len(vs) > 0 {
			headers[k] = vs[len(vs)-1]
			multi[k] = slices.Clone(vs)
		}
	}
	// REST API sends null, not {}, when there is no query string.
	var qs map[string]string
	var mqs map[string][]string
	for _, kv := range parseQuery(r.URL.RawQuery) {
		if qs == nil {
			qs, mqs = map[string]string{}, map[string][]string{}
		}
		qs[kv[0]] = kv[1]
		mqs[kv[0]] = append(mqs[kv[0]], kv[1])
	}
	// The root is served by the "/" resource; everything else by the greedy one.
	resource, params := "/", map[string]string(nil)
	if p := strings.TrimPrefix(r.URL.Path, "/"); p != "" {
		resource, params = "/{proxy+}", map[string]string{"proxy": p}
	}
	return events.APIGatewayProxyRequest{
		Resource:                        resource,
		Path:                            r.URL.Path,
		HTTPMethod:                      r.Method,
		Headers:                         headers,
		MultiValueHeaders:               multi,
		QueryStringParameters:           qs,
		MultiValueQueryStringParameters: mqs,
		PathParameters:                  params,
		RequestContext: events.APIGatewayProxyRequestContext{
			AccountID:        info.AccountID,
			ResourceID:       resource,
			Stage:            stage,
			DomainName:       r.Host,
			DomainPrefix:     domainPrefix(r.Host),
			RequestID:        info.RequestID,
			Protocol:         r.Proto,
			Identity:         events.APIGatewayRequestIdentity{SourceIP: info.SourceIP, UserAgent: r.UserAgent()},
			ResourcePath:     resource,
			Path:             r.URL.Path,
			HTTPMethod:       r.Method,
			RequestTime:      info.Time.UTC().Format(timeLayout),
			RequestTimeEpoch: info.Time.UnixMilli(),
			APIID:            APIID,
		},
		Body:            body,
		IsBase64Encoded: isB64,
	}
}

func splitCookies(headers []string) []string {
	var out []string
	for _, h := range headers {
		for c := range strings.SplitSeq(h, ";") {
			if c = strings.TrimSpace(c); c != "" {
				out = append(out, c)
			}
		}
	}
	return out
}

// domainPrefix is the first label of the host, as API Gateway reports "abc123" for
// "abc123.execute-api.us-east-1.amazonaws.com".
func domainPrefix(host string) string {
	host = hostOnly(host)
	prefix, _, _ := strings.Cut(host, ".")
	return prefix
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}
