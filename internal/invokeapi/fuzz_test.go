package invokeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/gateway"
	"github.com/stokehq/stoke/internal/lambdaspec"
	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/runtime"
)

// The seed corpus is also committed under testdata/fuzz/.

func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcdef")
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/lambda/aws4_request,SignedHeaders=host,Signature=")
	f.Add("AWS4-HMAC-SHA256 Credential=/a/b/c/d")
	f.Add("Bearer x")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err != nil {
			return
		}
		if a.AccessKeyID == "" || strings.Contains(a.AccessKeyID, "/") {
			t.Fatalf("%q: key %q", h, a.AccessKeyID)
		}
		for _, s := range a.SignedHeaders {
			if strings.Contains(s, ";") {
				t.Fatalf("%q: signed header %q", h, s)
			}
		}
	})
}

// FuzzHandler drives the whole handler with arbitrary names, qualifiers,
// headers and bodies against a backend whose function echoes its event,
// checking that every answer is a well-formed Lambda answer.
func FuzzHandler(f *testing.F) {
	f.Add("fn", "", "", "", []byte(`{"a":1}`), "")
	f.Add("fn:1", "", "RequestResponse", "Tail", []byte(`[]`), "")
	f.Add("arn:aws:lambda:us-east-1:000000000000:function:fn", "$LATEST", "DryRun", "None", []byte(nil), "")
	f.Add("000000000000:function:fn:2", "", "Event", "", []byte(`{}`), "")
	f.Add("fn", "1", "Bogus", "Head", []byte(`{"a":`), "")
	f.Add("nope", "", "", "", []byte(`"x"`), "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00")
	f.Add("fn", "", "", "", []byte(`1`), "AWS4-HMAC-SHA256 Credential=K/20240101/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")

	open := New(echoBackend{}, Options{Auth: "none"})
	signed := New(echoBackend{}, Options{Credentials: []config.Credential{{AccessKeyID: "K", SecretAccessKey: "S"}},
		Now: func() time.Time { return time.Date(2024, 1, 1, 0, 5, 0, 0, time.UTC) }})
	f.Fuzz(func(t *testing.T, name, qualifier, invType, logType string, body []byte, authz string) {
		target := "/2015-03-31/functions/" + url.PathEscape(name) + "/invocations"
		if qualifier != "" {
			target += "?Qualifier=" + url.QueryEscape(qualifier)
		}
		api := open
		if authz != "" {
			api = signed
		}
		req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		req.Header["X-Amz-Invocation-Type"] = []string{invType}
		req.Header["X-Amz-Log-Type"] = []string{logType}
		if authz != "" {
			req.Header["Authorization"] = []string{authz}
			req.Header["X-Amz-Date"] = []string{"20240101T000000Z"}
		}
		w := httptest.NewRecorder()
		api.Handler().ServeHTTP(w, req)
		resp := w.Result()
		if resp.Header.Get("X-Amzn-Requestid") == "" {
			// The mux answered (e.g. a redirect for a path it cleans): the
			// handler never saw the request.
			if resp.StatusCode < 300 {
				t.Fatalf("%s: %d without a request id", target, resp.StatusCode)
			}
			return
		}
		status := resp.StatusCode
		switch {
		case status >= 400:
			var e struct {
				Message string `json:"message"`
			}
			if resp.Header.Get("X-Amzn-Errortype") == "" || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Message == "" {
				t.Fatalf("%s: %d error without a type or message: %q", target, status, w.Body.String())
			}
			if status == 500 && invType != "Event" { // Event needs a store, which this API has not
				t.Fatalf("%s: 500 %s", target, w.Body.String())
			}
			if status == 403 && authz == "" {
				t.Fatalf("%s: 403 with auth off", target)
			}
		case status == 200:
			want := body
			if len(want) == 0 {
				want = []byte("{}") // Lambda passes {} for an empty payload
			}
			if resp.Header.Get("X-Amz-Executed-Version") != "1" || !bytes.Equal(w.Body.Bytes(), want) {
				t.Fatalf("%s: 200 version %q body %q for %q", target, resp.Header.Get("X-Amz-Executed-Version"), w.Body.String(), body)
			}
		case status == 204:
			if invType != "DryRun" {
				t.Fatalf("%s: 204 for %q", target, invType)
			}
		default:
			t.Fatalf("%s: unexpected status %d", target, status)
		}
		// A valid call to the existing function must succeed.
		tg, err := lambdaspec.ParseFunctionRef(name, qualifier)
		ok := err == nil && tg.Name == "fn" && tg.Region == "" && tg.Account == "" &&
			(tg.Qualifier == "" || tg.Qualifier == "$LATEST" || tg.Qualifier == "1") &&
			(invType == "" || invType == "RequestResponse") && (logType == "" || logType == "None" || logType == "Tail") &&
			(len(body) == 0 || json.Valid(body)) && authz == ""
		if ok && status != 200 {
			t.Fatalf("%s %q: %d %s", target, body, status, w.Body.String())
		}
	})
}

// echoBackend has one function, "fn" at version 1, that answers its event.
type echoBackend struct{}

func (echoBackend) Lookup(name string) (string, bool) { return "1", name == "fn" }
func (echoBackend) Tail(context.Context, string, string) []string {
	return []string{"START RequestId: x Version: 1", "REPORT RequestId: x\t"}
}
func (echoBackend) Run(ctx context.Context, c gateway.Call) gateway.Outcome {
	rec := &record.Record{RequestID: c.RequestID, Function: c.Function, Version: "1"}
	if c.Ready != nil {
		c.Ready(rec)
	}
	if err := c.Do(ctx, echoInstance{}); err != nil {
		return gateway.Outcome{Record: rec, Err: err, Status: 502, ErrorType: "Runtime.Unknown", Message: err.Error()}
	}
	return gateway.Outcome{Record: rec, Status: 200}
}

type echoInstance struct{ runtime.Instance }

func (echoInstance) InvokeEvent(_ context.Context, inv *runtime.Invocation) (*runtime.Result, error) {
	return &runtime.Result{Payload: inv.Payload}, nil
}
