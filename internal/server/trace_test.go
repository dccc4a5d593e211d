package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
	"github.com/stokehq/stoke/internal/server"
	"github.com/stokehq/stoke/internal/trace"
	"github.com/stokehq/stoke/internal/trace/otlptest"
)

// init runs before TestMain: with STOKE_TRACE_APP the test binary is a
// function that answers with the trace context it was given.
func init() {
	switch os.Getenv("STOKE_TRACE_APP") {
	case "http":
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s|%s", r.Header.Get("Traceparent"), r.Header.Get("X-Amzn-Trace-Id"))
		})
		_ = http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil)
		os.Exit(0)
	case "lambda":
		lambdaLoop()
		os.Exit(0)
	}
}

// lambdaLoop is a minimal Lambda runtime: each event is answered with an
// API Gateway proxy response whose body is Lambda-Runtime-Trace-Id.
func lambdaLoop() {
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/invocation/"
	for {
		resp, err := http.Get(api + "next")
		if err != nil {
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		body, _ := json.Marshal(map[string]any{"statusCode": 200, "body": resp.Header.Get("Lambda-Runtime-Trace-Id")})
		r, err := http.Post(api+resp.Header.Get("Lambda-Runtime-Aws-Request-Id")+"/response", "application/json", bytes.NewReader(body))
		if err != nil {
			return
		}
		// Read to the end, as aws-lambda-go does: else the connection is
		// not reused and every answer costs a connect and its peer check.
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
}

func startTraced(t *testing.T) (*server.Server, *otlptest.Receiver) {
	t.Helper()
	sandboxtest.CheckNoLeaks(t)
	recv := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.Srv.URL) // the exporter appends /v1/traces
	dir := t.TempDir()
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: "127.0.0.1:0"}
functions:
  h:
    runtime: http
    command: [%[1]q]
    memory: 256
    routes: [/h/*]
    env: {STOKE_TRACE_APP: http}
  l:
    runtime: lambda
    command: [%[1]q]
    memory: 128
    routes: [/l/*]
    env: {STOKE_TRACE_APP: lambda}
`, sandboxtest.InDir(t, dir))
	s := serve(t, dir, yaml)
	return s, recv
}

// call sends a request to the gateway and returns the request id and body.
func call(t *testing.T, s *server.Server, path string, header map[string]string) (string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.GatewayAddr()+path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
	}
	return resp.Header.Get("X-Request-Id"), string(b)
}

// waitTraces waits until the requests' traces are stored and exported: the
// gateway hands a trace over just after the response went out, so the
// client can be faster than it.
func waitTraces(t *testing.T, s *server.Server, reqIDs ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range reqIDs {
		for {
			if err := s.FlushTraces(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Trace(ctx, id); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func getTrace(t *testing.T, s *server.Server, reqID string) *trace.Trace {
	t.Helper()
	resp, body := adminReq(t, s, "GET", "/v1/traces/"+reqID, s.Token())
	if resp.StatusCode != 200 {
		t.Fatalf("trace of %s: %d %s", reqID, resp.StatusCode, body)
	}
	var tr trace.Trace
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatal(err)
	}
	return &tr
}

func TestTraceContextReachesFunctions(t *testing.T) {
	s, recv := startTraced(t)

	// http, cold, no incoming context: a new trace, and the app is handed
	// the invoke span as its parent.
	coldID, body := call(t, s, "/h/a", nil)
	tp, xray, _ := strings.Cut(body, "|")
	got, ok := trace.ParseTraceparent(tp)
	if !ok || !got.Sampled {
		t.Fatalf("the app got traceparent %q", tp)
	}
	if fromX, ok := trace.ParseXRay(xray); !ok || fromX.TraceID != got.TraceID || fromX.Parent != got.Parent {
		t.Errorf("the app got X-Amzn-Trace-Id %q, not the same trace as %q", xray, tp)
	}

	// http, warm, continuing the caller's traceparent.
	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	warmID, body := call(t, s, "/h/b", map[string]string{"traceparent": "00-" + callerTrace + "-" + callerSpan + "-01"})
	warm, ok := trace.ParseTraceparent(strings.Split(body, "|")[0])
	if !ok || warm.TraceID.String() != callerTrace || warm.Parent.String() == callerSpan {
		t.Errorf("continued traceparent: the app got %q", body)
	}

	// lambda, continuing an X-Amzn-Trace-Id: Lambda-Runtime-Trace-Id names the same trace.
	lamID, body := call(t, s, "/l/x", map[string]string{"X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"})
	lam, ok := trace.ParseXRay(body)
	if !ok || !strings.HasPrefix(body, "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=") || !strings.HasSuffix(body, ";Sampled=1") ||
		lam.Parent.String() == "53995c3f42cd8ad8" {
		t.Errorf("Lambda-Runtime-Trace-Id %q", body)
	}

	waitTraces(t, s, coldID, warmID, lamID)

	// Exported: the function's parent is the invoke span; the gateway span's
	// parent is the caller's span.
	cold := recv.Spans(got.TraceID.String())
	if len(cold) != 4 || cold["init"] == nil || cold["invoke"].SpanID != got.Parent.String() || cold["gateway"].ParentID != "" {
		t.Errorf("cold http trace: %v", cold)
	}
	w := recv.Spans(callerTrace)
	if len(w) != 3 || w["init"] != nil || w["gateway"].ParentID != callerSpan || w["invoke"].SpanID != warm.Parent.String() {
		t.Errorf("warm http trace: %v", w)
	}
	l := recv.Spans("5759e988bd862e3fe1be46a994272793")
	if len(l) != 4 || l["gateway"].ParentID != "53995c3f42cd8ad8" || l["invoke"].SpanID != lam.Parent.String() ||
		l["gateway"].Attrs["faas.name"].GetStringValue() != "l" || l["gateway"].Attrs["stoke.memory_mb"].GetIntValue() != 128 {
		t.Errorf("lambda trace: %v", l)
	}

	// Stored and served by the admin API, consistent with the record.
	tr := getTrace(t, s, coldID)
	if tr.TraceID != got.TraceID.String() || !tr.Cold || tr.Function != "h" || len(tr.Spans) != 4 {
		t.Fatalf("stored cold trace: %+v", tr)
	}
	_, body2 := adminReq(t, s, "GET", "/v1/functions/h/invocations", s.Token())
	var recs []map[string]any
	if err := json.Unmarshal(body2, &recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r["RequestID"] != coldID {
			continue
		}
		byName := map[string]trace.Span{}
		for _, sp := range tr.Spans {
			byName[sp.Name] = sp
		}
		for name, want := range map[string]float64{"queue": r["QueueMS"].(float64), "init": r["InitMS"].(float64), "invoke": r["DurationMS"].(float64)} {
			if d := byName[name].DurationMS - want; d > 0.01 || d < -0.01 {
				t.Errorf("%s span %.3f ms, record %.3f ms", name, byName[name].DurationMS, want)
			}
		}
		if byName["init"].End.After(byName["invoke"].Start) || byName["gateway"].DurationMS < byName["queue"].DurationMS+byName["invoke"].DurationMS {
			t.Errorf("spans out of order: %+v", tr.Spans)
		}
	}
	if tr := getTrace(t, s, warmID); tr.Spans[0].ParentID != callerSpan || tr.Cold {
		t.Errorf("stored warm trace: %+v", tr)
	}
	if tr := getTrace(t, s, lamID); tr.TraceID != "5759e988bd862e3fe1be46a994272793" {
		t.Errorf("stored lambda trace: %+v", tr)
	}
	resp, body3 := adminReq(t, s, "GET", "/v1/functions/h/traces?limit=1", s.Token())
	var list []trace.Trace
	if err := json.Unmarshal(body3, &list); err != nil || resp.StatusCode != 200 || len(list) != 1 || list[0].RequestID != warmID {
		t.Errorf("traces of h: %d %s", resp.StatusCode, body3)
	}
	if resp, _ := adminReq(t, s, "GET", "/v1/traces/nope", s.Token()); resp.StatusCode != 404 {
		t.Errorf("unknown request: %d", resp.StatusCode)
	}
	if resp, _ := adminReq(t, s, "GET", "/v1/traces/"+coldID, ""); resp.StatusCode != 401 {
		t.Errorf("traces without the token: %d", resp.StatusCode)
	}
}
