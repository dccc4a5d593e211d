// Package otlptest is a real OTLP/HTTP trace receiver for tests: an
// httptest server that decodes the protobuf export requests the OpenTelemetry
// exporter sends and keeps their spans.
package otlptest

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Receiver collects the spans exported to it.
type Receiver struct {
	Srv *httptest.Server
	mu  sync.Mutex
	sp  []*Span
}

// Span is a received span with its ids in hex and its attributes by key.
type Span struct {
	*tracepb.Span
	TraceID, SpanID, ParentID string
	Service                   string // the resource's service.name
	Attrs                     map[string]*commonpb.AnyValue
}

// Start starts a receiver, closed when the test ends. Point the exporter at
// r.URL() (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or r.Srv.URL (OTEL_EXPORTER_OTLP_ENDPOINT).
func Start(t testing.TB) *Receiver {
	r := &Receiver{}
	r.Srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("otlptest: unexpected %s %s (%s)", req.Method, req.URL.Path, req.Header.Get("Content-Type"))
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ex coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &ex); err != nil {
			t.Errorf("otlptest: decoding an export request: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.add(&ex)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.Srv.Close)
	return r
}

// URL is the traces endpoint.
func (r *Receiver) URL() string { return r.Srv.URL + "/v1/traces" }

func (r *Receiver) add(ex *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range ex.ResourceSpans {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				service = kv.Value.GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				sp := &Span{Span: s, TraceID: hex.EncodeToString(s.TraceId), SpanID: hex.EncodeToString(s.SpanId),
					ParentID: hex.EncodeToString(s.ParentSpanId), Service: service, Attrs: map[string]*commonpb.AnyValue{}}
				for _, kv := range s.Attributes {
					sp.Attrs[kv.Key] = kv.Value
				}
				r.sp = append(r.sp, sp)
			}
		}
	}
}

// Spans returns the spans of traceID received so far, by name.
func (r *Receiver) Spans(traceID string) map[string]*Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]*Span{}
	for _, s := range r.sp {
		if s.TraceID == traceID {
			out[s.Name] = s
		}
	}
	return out
}

// All returns every span received so far.
func (r *Receiver) All() []*Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Span(nil), r.sp...)
}
