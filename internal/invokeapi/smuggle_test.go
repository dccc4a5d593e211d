package invokeapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/stokehq/stoke/internal/gateway"
	"github.com/stokehq/stoke/internal/invokeapi"
	"github.com/stokehq/stoke/internal/pool"
)

// FuzzProxyEventNoSmuggling sends API Gateway events with control
// characters in their method, path, query and headers through the Invoke
// API to a real app on one kept-alive connection, and proves that no event
// makes a second request reach the app: after each event, a plain request
// must be answered by the app as its own (the app echoes the request id
// Stoke gave it)
// and the app's count of the requests it read must be the number Stoke
// sent. An event Stoke refuses (400 InvalidRequestContentException) must
// not have reached the app at all.
//
//	go test -run '^$' -fuzz FuzzProxyEventNoSmuggling ./internal/invokeapi
func FuzzProxyEventNoSmuggling(f *testing.F) {
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: x\r\nX-Request-Id: evil\r\n\r\n"
	for _, s := range [][5]string{
		{"GET", "/ok", "a=1", "X-A", "1"},
		{"GET", "/", "a=1 HTTP/1.1\r\nHost: x\r\n\r\n" + smuggled[:len(smuggled)-4], "X-A", "1"},
		{"GET", "/", "", "X-A", "1\r\n\r\n" + smuggled},
		{"GET", "/", "", "X-A\r\n\r\n" + smuggled + "X-B", "1"},
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET", "/", "", "X-A", "1"},
		{"GET", "/a\r\nb", "", "X-A", "1"},
		{"GET", "/", "\x00", "X-A", "\x7f"},
		{"GET", "/", "", "X-A", "tab\tok"},
		{"GET", "/", "", "Host", "x\r\n\r\n" + smuggled},
		{"POST", "/", "a\nb", "Content-Length", "0\r\n\r\n" + smuggled},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	fx := newFixture(f)
	fx.be.gw.Set([]*gateway.Function{fx.function("web", false, 5*time.Second, pool.Options{MaxInstances: 1})})
	_, srv := fx.serve(invokeapi.Options{Auth: "none"})

	// send invokes web with an event; it returns the Invoke API's status and
	// error type, and the app's answer when the app answered, checked to be
	// the answer to this invocation.
	send := func(t testing.TB, ev events.APIGatewayV2HTTPRequest) (int, string, *events.APIGatewayV2HTTPResponse) {
		t.Helper()
		payload, _ := json.Marshal(ev)
		res, err := http.Post(srv.URL+"/2015-03-31/functions/web/invocations", "application/json", bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out events.APIGatewayV2HTTPResponse
		if res.StatusCode != 200 || res.Header.Get("X-Amz-Function-Error") != "" {
			return res.StatusCode, res.Header.Get("X-Amzn-Errortype"), nil
		}
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
			t.Fatalf("invoke answered 200 without a proxy response: %v", err)
		}
		if id, echo := res.Header.Get("X-Amzn-Requestid"), out.Headers["x-echo-id"]; echo != "" && echo != id {
			t.Fatalf("invocation %s was answered with the response to %q: a request was smuggled", id, echo)
		}
		return res.StatusCode, "", &out
	}
	// probe sends a plain request and returns the app's count of requests
	// read, after checking the answer is to this request.
	probe := func(t testing.TB) int {
		t.Helper()
		var e events.APIGatewayV2HTTPRequest
		_ = json.Unmarshal(v2Event("GET", "/probe", ""), &e)
		status, typ, out := send(t, e)
		if out == nil || out.Headers["x-echo-id"] == "" {
			t.Fatalf("probe: %d %s %v", status, typ, out)
		}
		n, err := strconv.Atoi(out.Headers["x-count"])
		if err != nil {
			t.Fatalf("probe: x-count %q", out.Headers["x-count"])
		}
		return n
	}
	last := probe(f)

	f.Fuzz(func(t *testing.T, method, path, query, name, value string) {
		ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "$default", RawPath: path, RawQueryString: query,
			Headers: map[string]string{name: value}}
		ev.RequestContext.HTTP.Method, ev.RequestContext.HTTP.Path = method, path
		ev.RequestContext.DomainName = "example.com"
		status, typ, out := send(t, ev)
		reached := 0
		switch {
		case out != nil && out.Headers["x-count"] != "":
			reached = 1 // the app's handler answered (send checked it was this request)
		case status == http.StatusBadRequest && typ != "InvalidRequestContentException":
			t.Fatalf("400 %s, want InvalidRequestContentException", typ)
		}
		n := probe(t)
		if want := last + reached + 1; n != want {
			t.Fatalf("the app read %d requests since the last probe, Stoke sent %d (%s %q %q %q: %q): %s",
				n-last, reached+1, method, path, query, name, value, fmt.Sprint(status, " ", typ))
		}
		last = n
	})
}
