package apigw

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/stokehq/stoke/internal/runtime/httpwire"
)

var (
	binaryBody = []byte{0x89, 'P', 'N', 'G', 0x00, 0xff, 0xfe, '\n'}
	testTime   = time.Date(2024, 3, 9, 14, 5, 6, 789e6, time.FixedZone("CET", 3600))
	testInfo   = RequestInfo{RequestID: "req-1", AccountID: "123456789012", Time: testTime}
)

// newTestRequest builds a request as the gateway hands it to a runtime: RawPath, Host and
// RemoteAddr set by net/http's server, the forwarded fields by the gateway's policy.
func newTestRequest(method, target string, body []byte, headers ...string) *http.Request {
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	r.RemoteAddr = "203.0.113.7:51234"
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	httpwire.NewForwarding(nil).Apply(r)
	return r
}

// decode unmarshals out, the event or response JSON a call returned with
// err, into a T; either error fails t.
func decode[T any](t *testing.T, out []byte, err error) T {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// field is one decoded value and what it should be.
type field struct{ name, got, want string }

func checkFields(t *testing.T, fields []field) {
	t.Helper()
	for _, f := range fields {
		if f.got != f.want {
			t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
		}
	}
}

func TestEventFromHTTPV2(t *testing.T) {
	r := newTestRequest("POST", "http://api.example.com:8080/caf%C3%A9/a%2Fb?a=1&b=x%20y&a=2", []byte(`{"k":"é"}`),
		"Content-Type", "application/json; charset=utf-8",
		"X-Multi", "one", "X-Multi", "two",
		"Cookie", "s=1; t=2", "Cookie", "u=3",
		"User-Agent", "curl/8")
	out, err := EventFromHTTP(r, []byte(`{"k":"é"}`), Format20, testInfo)
	ev := decode[events.APIGatewayV2HTTPRequest](t, out, err)
	// No client certificate: no mTLS block at all, as API Gateway omits it
	// (an empty clientCert would tell a function there was one).
	var raw struct {
		RequestContext map[string]json.RawMessage `json:"requestContext"`
	}
	if err := json.Unmarshal(out, &raw); err != nil || raw.RequestContext["authentication"] != nil || raw.RequestContext["http"] == nil {
		t.Errorf("requestContext keys: %v %v", err, raw.RequestContext)
	}
	rc := ev.RequestContext
	checks := []field{
		{"version", ev.Version, "2.0"},
		{"routeKey", ev.RouteKey, "$default"},
		{"rawPath", ev.RawPath, "/caf%C3%A9/a%2Fb"},
		{"rawQueryString", ev.RawQueryString, "a=1&b=x%20y&a=2"},
		{"cookies", strings.Join(ev.Cookies, "|"), "s=1|t=2|u=3"},
		{"headers.x-multi", ev.Headers["x-multi"], "one,two"},
		{"headers.host", ev.Headers["host"], "api.example.com:8080"},
		{"headers.content-length", ev.Headers["content-length"], "10"},
		{"headers.x-forwarded-for", ev.Headers["x-forwarded-for"], "203.0.113.7"},
		{"headers.x-forwarded-port", ev.Headers["x-forwarded-port"], "8080"},
		{"qs.a", ev.QueryStringParameters["a"], "1,2"},
		{"qs.b", ev.QueryStringParameters["b"], "x y"},
		{"rc.routeKey", rc.RouteKey, "$default"},
		{"rc.stage", rc.Stage, "$default"},
		{"rc.accountId", rc.AccountID, "123456789012"},
		{"rc.apiId", rc.APIID, "stoke"},
		{"rc.requestId", rc.RequestID, "req-1"},
		{"rc.domainName", rc.DomainName, "api.example.com:8080"},
		{"rc.domainPrefix", rc.DomainPrefix, "api"},
		{"rc.time", rc.Time, "09/Mar/2024:13:05:06 +0000"},
		{"rc.http.method", rc.HTTP.Method, "POST"},
		{"rc.http.path", rc.HTTP.Path, "/café/a/b"},
		{"rc.http.protocol", rc.HTTP.Protocol, "HTTP/1.1"},
		{"rc.http.sourceIp", rc.HTTP.SourceIP, "203.0.113.7"},
		{"rc.http.userAgent", rc.HTTP.UserAgent, "curl/8"},
		{"body", ev.Body, `{"k":"é"}`},
	}
	checkFields(t, checks)
	if rc.TimeEpoch != testTime.UnixMilli() {
		t.Errorf("timeEpoch = %d, want %d", rc.TimeEpoch, testTime.UnixMilli())
	}
	if _, ok := ev.Headers["cookie"]; ok {
		t.Errorf("cookie header must move to cookies[], headers = %v", ev.Headers)
	}
	for k := range ev.Headers {
		if k != strings.ToLower(k) {
			t.Errorf("header name %q is not lower case", k)
		}
	}
	if ev.IsBase64Encoded {
		t.Error("JSON body must not be base64-encoded")
	}
}

func TestEventFromHTTPV1(t *testing.T) {
	r := newTestRequest("GET", "/caf%C3%A9/a%2Fb?a=1&b=x%20y&a=2", nil,
		"X-Multi", "one", "X-Multi", "two", "Cookie", "s=1; t=2", "User-Agent", "curl/8")
	out, err := EventFromHTTP(r, nil, Format10, testInfo)
	ev := decode[events.APIGatewayProxyRequest](t, out, err)
	rc := ev.RequestContext
	checks := []field{
		{"httpMethod", ev.HTTPMethod, "GET"},
		{"path", ev.Path, "/café/a/b"},
		{"resource", ev.Resource, "/{proxy+}"},
		{"pathParameters.proxy", ev.PathParameters["proxy"], "café/a/b"},
		{"headers.X-Multi", ev.Headers["X-Multi"], "two"},
		{"multiValueHeaders.X-Multi", strings.Join(ev.MultiValueHeaders["X-Multi"], "|"), "one|two"},
		{"headers.Cookie", ev.Headers["Cookie"], "s=1; t=2"},
		{"headers.Host", ev.Headers["Host"], "example.com"},
		{"qs.a", ev.QueryStringParameters["a"], "2"},
		{"mqs.a", strings.Join(ev.MultiValueQueryStringParameters["a"], "|"), "1|2"},
		{"mqs.b", strings.Join(ev.MultiValueQueryStringParameters["b"], "|"), "x y"},
		{"rc.httpMethod", rc.HTTPMethod, "GET"},
		{"rc.path", rc.Path, "/café/a/b"},
		{"rc.resourcePath", rc.ResourcePath, "/{proxy+}"},
		{"rc.stage", rc.Stage, "prod"},
		{"rc.apiId", rc.APIID, "stoke"},
		{"rc.accountId", rc.AccountID, "123456789012"},
		{"rc.requestId", rc.RequestID, "req-1"},
		{"rc.protocol", rc.Protocol, "HTTP/1.1"},
		{"rc.requestTime", rc.RequestTime, "09/Mar/2024:13:05:06 +0000"},
		{"rc.identity.sourceIp", rc.Identity.SourceIP, "203.0.113.7"},
		{"rc.identity.userAgent", rc.Identity.UserAgent, "curl/8"},
		{"body", ev.Body, ""},
	}
	checkFields(t, checks)
	if rc.RequestTimeEpoch != testTime.UnixMilli() {
		t.Errorf("requestTimeEpoch = %d", rc.RequestTimeEpoch)
	}
	if ev.IsBase64Encoded {
		t.Error("empty body must not be base64-encoded")
	}
}

func TestEventFromHTTPRootAndNoQuery(t *testing.T) {
	r := newTestRequest("GET", "/", nil)
	// Decode generically: REST sends null (not {}) for absent maps, and frameworks test for null.
	out, err := EventFromHTTP(r, nil, Format10, RequestInfo{Stage: "dev"})
	raw := decode[map[string]any](t, out, err)
	for _, k := range []string{"queryStringParameters", "multiValueQueryStringParameters", "pathParameters"} {
		if v, ok := raw[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, ok)
		}
	}
	if raw["resource"] != "/" {
		t.Errorf("resource = %v, want /", raw["resource"])
	}
	if st := raw["requestContext"].(map[string]any)["stage"]; st != "dev" {
		t.Errorf("stage = %v, want dev", st)
	}

	out, err = EventFromHTTP(r, nil, Format20, RequestInfo{})
	raw = decode[map[string]any](t, out, err)
	if _, ok := raw["queryStringParameters"]; ok {
		t.Error("2.0 event must omit queryStringParameters without a query")
	}
	if _, ok := raw["cookies"]; ok {
		t.Error("2.0 event must omit cookies without a Cookie header")
	}
	if raw["isBase64Encoded"] != false || raw["rawQueryString"] != "" {
		t.Errorf("isBase64Encoded = %v, rawQueryString = %q", raw["isBase64Encoded"], raw["rawQueryString"])
	}
	if _, err := EventFromHTTP(r, nil, "3.0", RequestInfo{}); err == nil {
		t.Error("unknown format must fail")
	}
}

// encodedBody is the part of an event or a response the body rule decides.
type encodedBody struct {
	Body            string `json:"body"`
	IsBase64Encoded bool   `json:"isBase64Encoded"`
}

func TestBodyEncoding(t *testing.T) {
	tests := []struct {
		name, contentType, contentEncoding string
		body                               []byte
		wantB64                            bool
	}{
		{"empty", "application/octet-stream", "", nil, false},
		{"plain text", "text/plain", "", []byte("héllo"), false},
		{"json with charset", "application/json; charset=utf-8", "", []byte(`{"a":1}`), false},
		{"vendor json", "application/vnd.api+json", "", []byte(`{}`), false},
		{"xml", "application/xml", "", []byte(`<a/>`), false},
		{"atom xml", "application/atom+xml", "", []byte(`<feed/>`), false},
		{"form", "application/x-www-form-urlencoded", "", []byte("a=1&b=2"), false},
		{"upper case type", "TEXT/HTML", "", []byte("<p>"), false},
		{"png", "image/png", "", binaryBody, true},
		{"octet stream text", "application/octet-stream", "", []byte("abc"), true},
		{"no content type", "", "", []byte("abc"), true},
		{"text but invalid utf-8", "text/plain", "", []byte{0xff, 0xfe}, true},
		{"gzipped json", "application/json", "gzip", []byte("abc"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, format := range []string{Format10, Format20} {
				r := newTestRequest("POST", "/up", tc.body)
				if tc.contentType != "" {
					r.Header.Set("Content-Type", tc.contentType)
				}
				if tc.contentEncoding != "" {
					r.Header.Set("Content-Encoding", tc.contentEncoding)
				}
				out, err := EventFromHTTP(r, tc.body, format, testInfo)
				ev := decode[encodedBody](t, out, err)
				if ev.IsBase64Encoded != tc.wantB64 {
					t.Errorf("%s: isBase64Encoded = %v, want %v", format, ev.IsBase64Encoded, tc.wantB64)
				}
				got := []byte(ev.Body)
				if ev.IsBase64Encoded {
					if got, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
						t.Fatal(err)
					}
				}
				if !bytes.Equal(got, tc.body) {
					t.Errorf("%s: body = %q, want %q", format, got, tc.body)
				}

				// The response direction uses the same rule.
				h := http.Header{}
				if tc.contentType != "" {
					h.Set("Content-Type", tc.contentType)
				}
				if tc.contentEncoding != "" {
					h.Set("Content-Encoding", tc.contentEncoding)
				}
				out, err = ResponseToEvent(format, 200, h, tc.body)
				ev = decode[encodedBody](t, out, err)
				if ev.IsBase64Encoded != tc.wantB64 {
					t.Errorf("%s response: isBase64Encoded = %v, want %v", format, ev.IsBase64Encoded, tc.wantB64)
				}
			}
		})
	}
}

func TestWriteHTTPResponse(t *testing.T) {
	const internalError = `{"message": "Internal server error"}`
	tests := []struct {
		name, format, payload string
		wantStatus            int
		wantHeaders           http.Header // only these are checked
		wantBody              string
		wantErr               bool
	}{
		{
			name: "2.0 full", format: Format20,
			payload: `{"statusCode":201,"headers":{"content-type":"text/plain","x-a":"1"},
				"cookies":["a=1; Path=/","b=2; Expires=Wed, 21 Oct 2015 07:28:00 GMT"],"body":"created"}`,
			wantStatus: 201,
			wantHeaders: http.Header{"Content-Type": {"text/plain"}, "X-A": {"1"}, "Content-Length": {"7"},
				"Set-Cookie": {"a=1; Path=/", "b=2; Expires=Wed, 21 Oct 2015 07:28:00 GMT"}},
			wantBody: "created",
		},
		{
			name: "2.0 base64 body", format: Format20,
			payload:    `{"statusCode":200,"isBase64Encoded":true,"body":"` + base64.StdEncoding.EncodeToString(binaryBody) + `"}`,
			wantStatus: 200, wantBody: string(binaryBody),
		},
		{
			name: "2.0 ignores multiValueHeaders", format: Format20,
			payload:     `{"statusCode":200,"multiValueHeaders":{"X-M":["a","b"]}}`,
			wantStatus:  200,
			wantHeaders: http.Header{"X-M": nil},
		},
		{name: "2.0 string is the body", format: Format20, payload: `"hello"`, wantStatus: 200,
			wantHeaders: http.Header{"Content-Type": {"application/json"}}, wantBody: `"hello"`},
		{name: "2.0 number is the body", format: Format20, payload: `42`, wantStatus: 200,
			wantHeaders: http.Header{"Content-Type": {"application/json"}}, wantBody: `42`},
		{name: "2.0 object without statusCode is the body", format: Format20, payload: `{"body":"x","ok":true}`,
			wantStatus: 200, wantHeaders: http.Header{"Content-Type": {"application/json"}}, wantBody: `{"body":"x","ok":true}`},
		{name: "2.0 array is the body", format: Format20, payload: `[1,2]`, wantStatus: 200, wantBody: `[1,2]`},
		{name: "2.0 not JSON", format: Format20, payload: `hello`, wantStatus: 502, wantBody: internalError, wantErr: true},
		{name: "2.0 empty payload", format: Format20, payload: ``, wantStatus: 502, wantBody: internalError, wantErr: true},
		{name: "2.0 statusCode string", format: Format20, payload: `{"statusCode":"200"}`, wantStatus: 502, wantErr: true},
		{name: "2.0 statusCode out of range", format: Format20, payload: `{"statusCode":1000}`, wantStatus: 502, wantErr: true},
		{name: "2.0 bad base64", format: Format20, payload: `{"statusCode":200,"isBase64Encoded":true,"body":"%%%"}`,
			wantStatus: 502, wantErr: true},
		{name: "2.0 204 has no body", format: Format20, payload: `{"statusCode":204,"body":"ignored"}`,
			wantStatus: 204, wantHeaders: http.Header{"Content-Length": nil}, wantBody: ""},
		{name: "2.0 function framing headers dropped", format: Format20,
			payload:    `{"statusCode":200,"headers":{"content-length":"999","transfer-encoding":"chunked"},"body":"abc"}`,
			wantStatus: 200, wantHeaders: http.Header{"Content-Length": {"3"}, "Transfer-Encoding": nil}, wantBody: "abc"},
		{
			name: "1.0 headers and multiValueHeaders merged", format: Format10,
			payload: `{"statusCode":302,"headers":{"Location":"/x","X-M":"b","X-N":"c"},
				"multiValueHeaders":{"X-M":["a","b"],"Set-Cookie":["a=1","b=2"]},"body":""}`,
			wantStatus: 302,
			wantHeaders: http.Header{"Location": {"/x"}, "X-M": {"a", "b"}, "X-N": {"c"},
				"Set-Cookie": {"a=1", "b=2"}},
		},
		{name: "1.0 missing statusCode", format: Format10, payload: `{"body":"x"}`, wantStatus: 502,
			wantHeaders: http.Header{"Content-Type": {"application/json"}}, wantBody: internalError, wantErr: true},
		{name: "1.0 string", format: Format10, payload: `"hello"`, wantStatus: 502, wantBody: internalError, wantErr: true},
		{name: "1.0 null", format: Format10, payload: `null`, wantStatus: 502, wantBody: internalError, wantErr: true},
		{name: "1.0 not JSON", format: Format10, payload: `{`, wantStatus: 502, wantBody: internalError, wantErr: true},
		{name: "1.0 base64 body", format: Format10,
			payload:    `{"statusCode":200,"isBase64Encoded":true,"body":"` + base64.StdEncoding.EncodeToString(binaryBody) + `"}`,
			wantStatus: 200, wantBody: string(binaryBody)},
		{name: "unknown format", format: "9", payload: `{"statusCode":200}`, wantStatus: 502, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			err := WriteHTTPResponse(rec, tc.format, []byte(tc.payload))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			res := rec.Result()
			if res.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", res.StatusCode, tc.wantStatus)
			}
			for k, want := range tc.wantHeaders {
				if got := res.Header.Values(k); !slices.Equal(got, want) {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			body, _ := io.ReadAll(res.Body)
			if tc.wantBody != "" || tc.wantStatus == 204 {
				if string(body) != tc.wantBody {
					t.Errorf("body = %q, want %q", body, tc.wantBody)
				}
			}
		})
	}
}

func TestWriteHTTPResponseNoSniffing(t *testing.T) {
	// Behind a real server, net/http would otherwise invent "text/html" for this body.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = WriteHTTPResponse(w, Format20, []byte(`{"statusCode":200,"body":"<html></html>"}`))
	}))
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct, ok := res.Header["Content-Type"]; ok {
		t.Errorf("Content-Type = %q, want none", ct)
	}
}

func TestRequestFromEvent(t *testing.T) {
	tests := []struct {
		name, payload string
		wantFormat    string
		wantErr       bool
	}{
		{"2.0", `{"version":"2.0","rawPath":"/a","requestContext":{"http":{"method":"GET"}}}`, Format20, false},
		{"1.0 by httpMethod", `{"httpMethod":"GET","path":"/a"}`, Format10, false},
		{"1.0 from HTTP API with version", `{"version":"1.0","httpMethod":"GET","path":"/a"}`, Format10, false},
		{"neither", `{"foo":"bar"}`, "", true},
		{"not an object", `[1]`, "", true},
		{"not JSON", `nope`, "", true},
		{"2.0 without method", `{"version":"2.0","rawPath":"/a"}`, Format20, true},
		{"2.0 bad rawPath escape", `{"version":"2.0","rawPath":"/%zz","requestContext":{"http":{"method":"GET"}}}`, Format20, true},
		{"1.0 bad base64", `{"httpMethod":"POST","path":"/","body":"!!","isBase64Encoded":true}`, Format10, true},
		{"1.0 bad method", `{"httpMethod":"GE T","path":"/"}`, Format10, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, format, err := RequestFromEvent(context.Background(), []byte(tc.payload))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && format != tc.wantFormat {
				t.Errorf("format = %q, want %q", format, tc.wantFormat)
			}
			if err == nil && r.URL.Path != "/a" {
				t.Errorf("path = %q", r.URL.Path)
			}
		})
	}
}

func TestRequestFromEventFields(t *testing.T) {
	payload := `{"version":"2.0","rawPath":"/p","rawQueryString":"","queryStringParameters":{"q":"1 2"},
		"cookies":["a=1","b=2"],"headers":{"x-a":"1,2","content-length":"99"},
		"requestContext":{"domainName":"fn.example","http":{"method":"PUT","protocol":"HTTP/2.0","sourceIp":"2001:db8::1"}},
		"body":"aGk=","isBase64Encoded":true}`
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, _, err := RequestFromEvent(ctx, []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	checks := []field{
		{"method", r.Method, "PUT"},
		{"query", r.URL.RawQuery, "q=1+2"},
		{"cookie", r.Header.Get("Cookie"), "a=1; b=2"},
		{"x-a", r.Header.Get("X-A"), "1,2"},
		{"host", r.Host, "fn.example"},
		{"proto", r.Proto, "HTTP/2.0"},
		{"remote", r.RemoteAddr, "[2001:db8::1]:0"},
		{"body", string(body), "hi"},
	}
	checkFields(t, checks)
	if r.ContentLength != 2 || r.Header.Get("Content-Length") != "" {
		t.Errorf("ContentLength = %d, header %q: the decoded body's length must win", r.ContentLength, r.Header.Get("Content-Length"))
	}
	if r.Context() != ctx {
		t.Error("request does not carry the caller's context")
	}
}

func TestRequestRoundTrip(t *testing.T) {
	tests := []struct {
		name, method, target string
		body                 []byte
		headers              []string
	}{
		{"get with repeated query", "GET", "/search?q=a&q=b&x=%2F", nil, []string{"Accept", "text/html"}},
		{"head", "HEAD", "/", nil, nil},
		{"options preflight", "OPTIONS", "/api", nil, []string{"Origin", "https://a.example", "Access-Control-Request-Method", "PUT"}},
		{"post binary", "POST", "/upload", binaryBody, []string{"Content-Type", "application/octet-stream"}},
		{"post json", "POST", "/api/items", []byte(`{"name":"ñ"}`), []string{"Content-Type", "application/json"}},
		{"unicode and escaped path", "PUT", "/caf%C3%A9/a%2Fb", []byte("x"), []string{"Content-Type", "text/plain"}},
		{"cookies and repeated headers", "GET", "/c", nil, []string{"Cookie", "a=1; b=2", "X-Multi", "1", "X-Multi", "2"}},
	}
	for _, tc := range tests {
		for _, format := range []string{Format10, Format20} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				in := newTestRequest(tc.method, tc.target, tc.body, tc.headers...)
				ev, err := EventFromHTTP(in, tc.body, format, testInfo)
				if err != nil {
					t.Fatal(err)
				}
				out, gotFormat, err := RequestFromEvent(context.Background(), ev)
				if err != nil {
					t.Fatal(err)
				}
				if gotFormat != format {
					t.Errorf("format = %q, want %q", gotFormat, format)
				}
				if out.Method != in.Method {
					t.Errorf("method = %q, want %q", out.Method, in.Method)
				}
				// 1.0 only carries the decoded path, so "a%2Fb" comes back as "a/b" there.
				if out.URL.Path != in.URL.Path {
					t.Errorf("path = %q, want %q", out.URL.Path, in.URL.Path)
				}
				if format == Format20 && out.URL.EscapedPath() != in.URL.EscapedPath() {
					t.Errorf("escaped path = %q, want %q", out.URL.EscapedPath(), in.URL.EscapedPath())
				}
				if !reflect.DeepEqual(out.URL.Query(), in.URL.Query()) {
					t.Errorf("query = %v, want %v", out.URL.Query(), in.URL.Query())
				}
				if out.Host != in.Host {
					t.Errorf("host = %q, want %q", out.Host, in.Host)
				}
				for k := range in.Header {
					want := in.Header.Values(k)
					got := out.Header.Values(k)
					if format == Format20 {
						want = []string{strings.Join(want, ",")} // 2.0 joins repeats; HTTP says that is the same
						if k == "Cookie" {
							want = []string{strings.Join(in.Header.Values(k), "; ")}
						}
					}
					if !slices.Equal(got, want) {
						t.Errorf("header %s = %q, want %q", k, got, want)
					}
				}
				if got := out.Header.Get("X-Forwarded-For"); got != "203.0.113.7" {
					t.Errorf("X-Forwarded-For = %q", got)
				}
				if out.RemoteAddr != "203.0.113.7:0" {
					t.Errorf("RemoteAddr = %q", out.RemoteAddr)
				}
				body, _ := io.ReadAll(out.Body)
				if !bytes.Equal(body, tc.body) && !(len(body) == 0 && len(tc.body) == 0) {
					t.Errorf("body = %q, want %q", body, tc.body)
				}
				if out.ContentLength != int64(len(tc.body)) {
					t.Errorf("ContentLength = %d, want %d", out.ContentLength, len(tc.body))
				}
			})
		}
	}
}

func TestResponseRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header http.Header
		body   []byte
	}{
		{"html", 200, http.Header{"Content-Type": {"text/html; charset=utf-8"}}, []byte("<p>ünïcode</p>")},
		{"binary", 200, http.Header{"Content-Type": {"image/png"}}, binaryBody},
		{"empty 404", 404, http.Header{"Content-Type": {"text/plain"}}, nil},
		{"redirect with cookies", 303, http.Header{
			"Location":   {"/next"},
			"Set-Cookie": {"a=1; Path=/; HttpOnly", "b=2; Expires=Wed, 21 Oct 2015 07:28:00 GMT"},
			"Vary":       {"Accept", "Cookie"},
		}, nil},
		{"no content", 204, http.Header{"X-Request-Id": {"abc"}}, nil},
	}
	for _, tc := range tests {
		for _, format := range []string{Format10, Format20} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				payload, err := ResponseToEvent(format, tc.status, tc.header, tc.body)
				if err != nil {
					t.Fatal(err)
				}
				// Prove the shape: Lambda's own structs must read it.
				if format == Format20 {
					var ev events.APIGatewayV2HTTPResponse
					if err := json.Unmarshal(payload, &ev); err != nil {
						t.Fatal(err)
					}
					if len(ev.Cookies) != len(tc.header["Set-Cookie"]) {
						t.Errorf("cookies = %q, want %q", ev.Cookies, tc.header["Set-Cookie"])
					}
					if _, ok := ev.Headers["set-cookie"]; ok {
						t.Error("Set-Cookie must travel in cookies[], not headers")
					}
				} else {
					var ev events.APIGatewayProxyResponse
					if err := json.Unmarshal(payload, &ev); err != nil {
						t.Fatal(err)
					}
					if ev.StatusCode != tc.status {
						t.Errorf("statusCode = %d", ev.StatusCode)
					}
				}
				rec := httptest.NewRecorder()
				if err := WriteHTTPResponse(rec, format, payload); err != nil {
					t.Fatal(err)
				}
				res := rec.Result()
				if res.StatusCode != tc.status {
					t.Errorf("status = %d, want %d", res.StatusCode, tc.status)
				}
				for k, want := range tc.header {
					got := res.Header.Values(k)
					if format == Format20 && k != "Set-Cookie" {
						want = []string{strings.Join(want, ",")}
					}
					if !slices.Equal(got, want) {
						t.Errorf("header %s = %q, want %q", k, got, want)
					}
				}
				body, _ := io.ReadAll(res.Body)
				if !bytes.Equal(body, tc.body) && !(len(body) == 0 && len(tc.body) == 0) {
					t.Errorf("body = %q, want %q", body, tc.body)
				}
			})
		}
	}
	if _, err := ResponseToEvent("x", 200, nil, nil); err == nil {
		t.Error("unknown format must fail")
	}
}

func TestResponseToEventZeroStatus(t *testing.T) {
	out, err := ResponseToEvent(Format20, 0, http.Header{}, nil)
	ev := decode[events.APIGatewayV2HTTPResponse](t, out, err)
	if ev.StatusCode != 200 || ev.IsBase64Encoded || ev.Body != "" {
		t.Errorf("got %+v, want 200 with an empty plain body", ev)
	}
}

func FuzzWriteHTTPResponse(f *testing.F) {
	for _, s := range []string{`{"statusCode":200,"body":"x"}`, `"s"`, `{"statusCode":-1}`, `{`, ``,
		`{"statusCode":200,"isBase64Encoded":true,"body":"AAEC"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, format := range []string{Format10, Format20} {
			rec := &headerRecorder{ResponseRecorder: httptest.NewRecorder()}
			err := WriteHTTPResponse(rec, format, payload)
			if rec.status == 0 {
				t.Fatalf("%s: no status written", format)
			}
			if rec.Code < 100 || rec.Code > 599 {
				t.Fatalf("%s: status %d", format, rec.Code)
			}
			if err != nil && rec.Code != http.StatusBadGateway {
				t.Fatalf("%s: error %v but status %d", format, err, rec.Code)
			}
		}
	})
}

// headerRecorder notes an explicit WriteHeader, which httptest.ResponseRecorder hides.
type headerRecorder struct {
	*httptest.ResponseRecorder
	status int
}

func (h *headerRecorder) WriteHeader(code int) {
	h.status = code
	h.ResponseRecorder.WriteHeader(code)
}

func FuzzRequestFromEvent(f *testing.F) {
	for _, s := range []string{`{"version":"2.0","rawPath":"/a","requestContext":{"http":{"method":"GET"}}}`,
		`{"httpMethod":"POST","path":"/","body":"aGk=","isBase64Encoded":true}`, `{}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, format, err := RequestFromEvent(context.Background(), payload)
		if err != nil {
			return
		}
		if format != Format10 && format != Format20 {
			t.Fatalf("format %q", format)
		}
		if r.Method == "" || !strings.HasPrefix(r.URL.Path, "/") {
			t.Fatalf("method %q path %q", r.Method, r.URL.Path)
		}
		if _, err := io.ReadAll(r.Body); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzEventFromHTTP(f *testing.F) {
	f.Add("GET", "/", "", "", "")
	f.Add("POST", "/café/a/b", "a=1&a=2&b=%zz", "x; y", `{"k":1}`)
	f.Add("PUT", "/x", "q", "\x00", "\xff\xfe")
	f.Fuzz(func(t *testing.T, method, path, query, header, body string) {
		if !isToken(method) {
			t.Skip() // net/http never hands such a request over
		}
		r := &http.Request{
			Method:     method,
			URL:        &url.URL{Path: path, RawQuery: query},
			Proto:      "HTTP/1.1",
			ProtoMajor: 1, ProtoMinor: 1,
			Header:     http.Header{"X-Fuzz": {header}, "Cookie": {header}, "Content-Type": {"text/plain"}},
			Host:       "fuzz.example",
			RemoteAddr: "192.0.2.1:1234",
		}
		for _, format := range []string{Format10, Format20} {
			ev, err := EventFromHTTP(r, []byte(body), format, testInfo)
			if err != nil {
				t.Fatal(err)
			}
			var target any = &events.APIGatewayProxyRequest{}
			if format == Format20 {
				target = &events.APIGatewayV2HTTPRequest{}
			}
			if err := json.Unmarshal(ev, target); err != nil {
				t.Fatalf("%s: event does not fit the events struct: %v", format, err)
			}
			back, gotFormat, err := RequestFromEvent(context.Background(), ev)
			if err != nil {
				t.Fatalf("%s: %v\n%s", format, err, ev)
			}
			if gotFormat != format || back.Method != method {
				t.Fatalf("%s: got format %q method %q", format, gotFormat, back.Method)
			}
			got, _ := io.ReadAll(back.Body)
			if string(got) != body {
				t.Fatalf("%s: body %q, want %q", format, got, body)
			}
			// 2.0 passes the raw query through; bytes JSON cannot hold arrive percent-escaped.
			if format == Format20 && !reflect.DeepEqual(parseQuery(back.URL.RawQuery), parseQuery(query)) {
				t.Fatalf("2.0: query %q, want %q", back.URL.RawQuery, query)
			}
			if format == Format20 && utf8.ValidString(query) && back.URL.RawQuery != query {
				t.Fatalf("2.0: raw query %q, want %q", back.URL.RawQuery, query)
			}
		}
	})
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func TestMalformedQueryKept(t *testing.T) {
	r := newTestRequest("GET", "/", nil)
	r.URL.RawQuery = "a=100%&b=%41+c&raw=\xff"
	out, err := EventFromHTTP(r, nil, Format20, testInfo)
	ev := decode[events.APIGatewayV2HTTPRequest](t, out, err)
	// url.ParseQuery would drop "a" entirely; API Gateway forwards it.
	if got := ev.QueryStringParameters["a"]; got != "100%" {
		t.Errorf("a = %q, want 100%%", got)
	}
	if got := ev.QueryStringParameters["b"]; got != "A c" {
		t.Errorf("b = %q, want %q", got, "A c")
	}
	if ev.RawQueryString != "a=100%&b=%41+c&raw=%FF" {
		t.Errorf("rawQueryString = %q: invalid UTF-8 must arrive percent-escaped", ev.RawQueryString)
	}
}
