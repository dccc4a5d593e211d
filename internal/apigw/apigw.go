// Package apigw translates between plain HTTP and API Gateway's Lambda proxy events, in both
// directions, so a function written for API Gateway runs behind Stoke unchanged, and a plain HTTP
// app runs as an event-driven function the way Lambda Web Adapter runs it.
//
// Two payload formats exist, named as API Gateway names them: "1.0" is the REST API shape
// (events.APIGatewayProxyRequest/Response) and "2.0" the HTTP API shape
// (events.APIGatewayV2HTTPRequest/Response). The JSON is produced from and parsed into the
// aws-lambda-go structs so the field names and types are Lambda's own.
//
// Stoke has no stages or resources of its own, so a 1.0 event always looks like what a REST API
// with a greedy "ANY /{proxy+}" resource (plus "ANY /" for the root, as Zappa and SAM create)
// served through a custom domain sends: requestContext.path carries no stage prefix.
package apigw

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// Payload format versions, as API Gateway's payloadFormatVersion spells them.
const (
	Format10 = "1.0"
	Format20 = "2.0"
)

// APIID is what requestContext.apiId says: there is one Stoke gateway, not one API per function.
const APIID = "stoke"

// timeLayout is API Gateway's requestContext.time / requestTime layout (CLF style).
const timeLayout = "02/Jan/2006:15:04:05 -0700"

// RequestInfo carries what API Gateway knows about a request beyond the request itself.
type RequestInfo struct {
	RequestID string
	AccountID string
	// Stage defaults to "$default" for 2.0 (the HTTP API auto-deployed stage) and to "prod" for
	// 1.0, because REST API stage names cannot start with "$".
	Stage string
	// Time is when the gateway received the request; zero means now.
	Time time.Time
	// SourceIP is taken from r.RemoteAddr when empty.
	SourceIP string
}

// errorBody is what API Gateway answers when it cannot make sense of a function's response.
const errorBody = `{"message": "Internal server error"}`

// EventFromHTTP builds the event API Gateway would send for r. body is the request body already
// read by the caller (r.Body is not touched), because the gateway reads it once to enforce its size limit.
func EventFromHTTP(r *http.Request, body []byte, format string, info RequestInfo) ([]byte, error) {
	if info.Time.IsZero() {
		info.Time = time.Now()
	}
	if info.SourceIP == "" {
		info.SourceIP = hostOnly(r.RemoteAddr)
	}
	h := forwardedHeaders(r, body, info.SourceIP)
	text, isB64 := encodeBody(h.Get("Content-Type"), h.Get("Content-Encoding"), body)
	var ev any
	switch format {
	case Format20:
		ev = eventV2(r, h, text, isB64, info)
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

// forwardedHeaders returns r's headers as the function sees them behind API Gateway: Host is a
// header again, the body has a length (API Gateway buffers it), and the X-Forwarded-* headers that
// frameworks use to rebuild absolute URLs are present.
func forwardedHeaders(r *http.Request, body []byte, sourceIP string) http.Header {
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
	if sourceIP != "" {
		if prior := h.Values("X-Forwarded-For"); len(prior) > 0 {
			h.Set("X-Forwarded-For", strings.Join(prior, ", ")+", "+sourceIP)
		} else {
			h.Set("X-Forwarded-For", sourceIP)
		}
	}
	if h.Get("X-Forwarded-Proto") == "" {
		proto, port := "http", "80"
		if r.TLS != nil {
			proto, port = "https", "443"
		}
		if _, p, err := net.SplitHostPort(r.Host); err == nil && p != "" {
			port = p
		}
		h.Set("X-Forwarded-Proto", proto)
		h.Set("X-Forwarded-Port", port)
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

// parseQuery splits a raw query into ordered key/value pairs. Unlike url.ParseQuery it keeps
// pairs with bad escapes (raw) instead of dropping them, since API Gateway forwards them too.
func parseQuery(raw string) [][2]string {
	var out [][2]string
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		out = append(out, [2]string{unescapeQuery(k), unescapeQuery(v)})
	}
	return out
}

// unescapeQuery decodes "+" and every valid %XX, keeping a malformed escape as literal text
// rather than losing the whole value.
func unescapeQuery(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '+':
			b.WriteByte(' ')
		case s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// escapeInvalidUTF8 percent-escapes bytes JSON cannot carry, instead of letting encoding/json
// turn them into U+FFFD: the escaped query still decodes to the bytes the client sent.
func escapeInvalidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			fmt.Fprintf(&b, "%%%02X", s[i])
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
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

// encodeBody returns the body as the event's body field: as is when it is text, base64 otherwise.
func encodeBody(contentType, contentEncoding string, body []byte) (string, bool) {
	if len(body) == 0 {
		return "", false
	}
	if isText(contentType, contentEncoding) && utf8.Valid(body) {
		return string(body), false
	}
	return base64.StdEncoding.EncodeToString(body), true
}

// isText reports whether a body of this type travels as a JSON string. A compressed body is
// binary whatever its type, as Lambda Web Adapter treats it.
func isText(contentType, contentEncoding string) bool {
	if ce := strings.ToLower(strings.TrimSpace(contentEncoding)); ce != "" && ce != "identity" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt, _, _ = strings.Cut(strings.ToLower(contentType), ";")
		mt = strings.TrimSpace(mt)
	}
	if strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") {
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript", "application/x-www-form-urlencoded",
		"application/graphql", "application/yaml", "application/x-yaml", "image/svg+xml":
		return true
	}
	return false
}

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
