package apigw

// API Gateway event → HTTP request: what Lambda Web Adapter hands a plain HTTP app.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// RequestFromEvent rebuilds the HTTP request an API Gateway event describes, for handing to a
// plain HTTP app. The format is detected from the event ("version":"2.0", else an httpMethod
// means 1.0). The URL holds only path and query, as on a server-side request; set its Scheme and
// Host to send it. An event that is neither format is an error.
func RequestFromEvent(ctx context.Context, payload []byte) (*http.Request, string, error) {
	var probe struct {
		Version    string `json:"version"`
		HTTPMethod string `json:"httpMethod"`
	}
	if err := json.Unmarshal(payload, &probe); err != nil {
		return nil, "", fmt.Errorf("apigw: event is not a JSON object: %w", err)
	}
	switch {
	case probe.Version == Format20:
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, "", fmt.Errorf("apigw: decode 2.0 event: %w", err)
		}
		r, err := requestV2(ctx, &ev)
		return r, Format20, err
	case probe.HTTPMethod != "":
		var ev events.APIGatewayProxyRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, "", fmt.Errorf("apigw: decode 1.0 event: %w", err)
		}
		r, err := requestV1(ctx, &ev)
		return r, Format10, err
	}
	return nil, "", fmt.Errorf("apigw: event is neither an API Gateway 2.0 nor a 1.0 proxy event")
}

func requestV2(ctx context.Context, ev *events.APIGatewayV2HTTPRequest) (*http.Request, error) {
	u := &url.URL{RawQuery: ev.RawQueryString}
	if ev.RawPath != "" {
		p, err := url.PathUnescape(ev.RawPath)
		if err != nil {
			return nil, fmt.Errorf("apigw: bad rawPath %q: %w", ev.RawPath, err)
		}
		u.Path, u.RawPath = p, ev.RawPath
	} else {
		u.Path = ev.RequestContext.HTTP.Path
	}
	if u.RawQuery == "" && len(ev.QueryStringParameters) > 0 {
		q := url.Values{}
		for k, v := range ev.QueryStringParameters {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
	}
	h := make(http.Header, len(ev.Headers)+1)
	for k, v := range ev.Headers {
		// A comma-joined value cannot be split back safely (dates, quoted strings); one field
		// with commas means the same in HTTP.
		h.Add(k, v)
	}
	if len(ev.Cookies) > 0 {
		h.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	hc := ev.RequestContext.HTTP
	return newRequest(ctx, hc.Method, u, h, ev.RequestContext.DomainName, hc.Protocol, hc.SourceIP, ev.Body, ev.IsBase64Encoded)
}

func requestV1(ctx context.Context, ev *events.APIGatewayProxyRequest) (*http.Request, error) {
	u := &url.URL{Path: ev.Path}
	q := url.Values{}
	for k, v := range ev.QueryStringParameters {
		q.Set(k, v)
	}
	for k, vs := range ev.MultiValueQueryStringParameters {
		q[k] = slices.Clone(vs)
	}
	u.RawQuery = q.Encode()
	h := make(http.Header, len(ev.MultiValueHeaders)+len(ev.Headers))
	for k, vs := range ev.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for k, v := range ev.Headers {
		if len(h.Values(k)) == 0 {
			h.Add(k, v)
		}
	}
	rc := ev.RequestContext
	return newRequest(ctx, ev.HTTPMethod, u, h, rc.DomainName, rc.Protocol, rc.Identity.SourceIP, ev.Body, ev.IsBase64Encoded)
}

func newRequest(ctx context.Context, method string, u *url.URL, h http.Header, domain, proto, sourceIP, body string, isB64 bool) (*http.Request, error) {
	if method == "" {
		return nil, fmt.Errorf("apigw: event has no HTTP method")
	}
	raw := []byte(body)
	if isB64 {
		var err error
		if raw, err = base64.StdEncoding.DecodeString(body); err != nil {
			return nil, fmt.Errorf("apigw: decode base64 body: %w", err)
		}
	}
	if !strings.HasPrefix(u.Path, "/") {
		u.Path = "/" + u.Path
		if u.RawPath != "" {
			u.RawPath = "/" + u.RawPath
		}
	}
	r, err := http.NewRequestWithContext(ctx, method, "/", bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("apigw: build request: %w", err)
	}
	r.URL = u
	r.Header = h
	r.Host = h.Get("Host")
	if r.Host == "" {
		r.Host = domain
	}
	h.Del("Host") // net/http keeps the host in r.Host, never in the header map
	if major, minor, ok := http.ParseHTTPVersion(proto); ok {
		r.Proto, r.ProtoMajor, r.ProtoMinor = proto, major, minor
	}
	h.Del("Content-Length") // the decoded body has its own length
	if sourceIP != "" {
		r.RemoteAddr = net.JoinHostPort(sourceIP, "0")
	}
	return r, nil
}
