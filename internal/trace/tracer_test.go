package trace_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/store"
	"github.com/stokehq/stoke/internal/trace"
	"github.com/stokehq/stoke/internal/trace/otlptest"
)

func newTracer(t testing.TB, o trace.Options) (*trace.Tracer, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o.Store = st
	tr, err := trace.NewTracer(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Close(context.Background()); err != nil {
			t.Error(err)
		}
		st.Close()
	})
	return tr, st
}

func msDur(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// near says whether an exported nanosecond timestamp is t.
func near(ns uint64, t time.Time) bool { return math.Abs(float64(int64(ns)-t.UnixNano())) < 1000 }

func TestSpansExportedAndStored(t *testing.T) {
	recv := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", recv.URL())
	t.Setenv("OTEL_SERVICE_NAME", "stoke-test")
	tr, st := newTracer(t, trace.Options{})
	if !tr.Exporting() {
		t.Fatal("not exporting with OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set")
	}

	start := time.Now().Add(-time.Second)
	cold := &record.Record{RequestID: "cold-1", Function: "hello", Version: "2", Start: start, Cold: true,
		InitMS: 16.8, QueueMS: 17.9, DurationMS: 4.2, BilledMS: 5, MemoryMB: 256, MaxMemoryMB: 31, Status: 200,
		InstanceID: "i-1", Method: "GET", Path: "/hello"}
	coldTC, _ := trace.ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	invokeStart := start.Add(msDur(18))
	end := invokeStart.Add(msDur(4.2))
	tr.Trace(cold, coldTC, invokeStart, end)

	warm := *cold
	warm.RequestID, warm.Cold, warm.InitMS, warm.QueueMS, warm.Status, warm.ErrorType = "warm-1", false, 0, 0.05, 502, "Runtime.ExitError"
	warmTC := trace.NewContext()
	tr.Trace(&warm, warmTC, start.Add(msDur(0.1)), start.Add(msDur(4.3)))

	throttled := &record.Record{RequestID: "thr-1", Function: "hello", Version: "2", Start: start, QueueMS: 0.02,
		MemoryMB: 256, Status: 429, ErrorType: "TooManyRequestsException", Method: "GET", Path: "/hello"}
	thrTC := trace.NewContext()
	tr.Trace(throttled, thrTC, time.Time{}, start.Add(msDur(0.03)))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// Cold: the four spans, one trace (the caller's), gateway under the caller's span.
	spans := recv.Spans(coldTC.TraceID.String())
	if len(spans) != 4 {
		t.Fatalf("cold trace: %d spans: %v", len(spans), spans)
	}
	gw, q, in, inv := spans["gateway"], spans["queue"], spans["init"], spans["invoke"]
	if gw == nil || q == nil || in == nil || inv == nil {
		t.Fatalf("cold trace spans: %v", spans)
	}
	if gw.ParentID != "00f067aa0ba902b7" || gw.SpanID != coldTC.Gateway.String() || gw.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("gateway: parent %s id %s kind %v", gw.ParentID, gw.SpanID, gw.Kind)
	}
	for _, s := range []*otlptest.Span{q, in, inv} {
		if s.ParentID != gw.SpanID {
			t.Errorf("%s: parent %s, want the gateway span %s", s.Name, s.ParentID, gw.SpanID)
		}
	}
	if inv.SpanID != coldTC.Invoke.String() {
		t.Errorf("invoke span %s is not the parent the function was told, %s", inv.SpanID, coldTC.Invoke)
	}
	if gw.Service != "stoke-test" {
		t.Errorf("service.name %q", gw.Service)
	}
	// Timings are the record's.
	queueEnd := start.Add(msDur(17.9))
	for _, c := range []struct {
		s          *otlptest.Span
		start, end time.Time
	}{
		{gw, start, end}, {q, start, queueEnd}, {in, queueEnd.Add(-msDur(16.8)), queueEnd}, {inv, invokeStart, invokeStart.Add(msDur(4.2))},
	} {
		if !near(c.s.StartTimeUnixNano, c.start) || !near(c.s.EndTimeUnixNano, c.end) {
			t.Errorf("%s: %d..%d, want %d..%d", c.s.Name, c.s.StartTimeUnixNano, c.s.EndTimeUnixNano, c.start.UnixNano(), c.end.UnixNano())
		}
	}
	a := gw.Attrs
	if a["faas.name"].GetStringValue() != "hello" || a["faas.version"].GetStringValue() != "2" || !a["faas.coldstart"].GetBoolValue() ||
		a["faas.instance"].GetStringValue() != "i-1" || a["stoke.memory_mb"].GetIntValue() != 256 || a["faas.max_memory"].GetIntValue() != 256<<20 ||
		a["stoke.billed_ms"].GetIntValue() != 5 || a["http.response.status_code"].GetIntValue() != 200 || a["faas.invocation_id"].GetStringValue() != "cold-1" ||
		a["http.request.method"].GetStringValue() != "GET" || a["url.path"].GetStringValue() != "/hello" {
		t.Errorf("gateway attributes: %v", a)
	}
	if _, ok := a["error.type"]; ok || gw.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("a 200 has an error: %v %v", a["error.type"], gw.Status)
	}
	if inv.Attrs["stoke.billed_ms"].GetIntValue() != 5 || inv.Attrs["faas.instance"].GetStringValue() != "i-1" {
		t.Errorf("invoke attributes: %v", inv.Attrs)
	}

	// Warm: no init; its own new trace, with no parent; failed.
	spans = recv.Spans(warmTC.TraceID.String())
	if len(spans) != 3 || spans["init"] != nil || spans["gateway"].ParentID != "" || spans["gateway"].Attrs["faas.coldstart"].GetBoolValue() {
		t.Errorf("warm trace: %v", spans)
	}
	if g := spans["gateway"]; g.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || g.Attrs["error.type"].GetStringValue() != "Runtime.ExitError" {
		t.Errorf("warm failure: status %v attrs %v", g.Status, g.Attrs)
	}
	if inv := spans["invoke"]; inv.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("warm failure on invoke: %v", inv.Status)
	}
	// Throttled: never reached an instance.
	spans = recv.Spans(thrTC.TraceID.String())
	if len(spans) != 2 || spans["gateway"] == nil || spans["queue"] == nil {
		t.Errorf("throttled trace: %v", spans)
	}
	if n := len(recv.All()); n != 9 {
		t.Errorf("%d spans exported, want 9", n)
	}

	// The same spans are stored.
	row, err := st.Trace(ctx, "cold-1")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := trace.Decode(row.Data)
	if err != nil {
		t.Fatal(err)
	}
	if row.TraceID != coldTC.TraceID.String() || stored.TraceID != row.TraceID || !stored.Cold || len(stored.Spans) != 4 ||
		math.Abs(stored.DurationMS-22.2) > 0.001 {
		t.Fatalf("stored: %+v", stored)
	}
	for i, name := range []string{"gateway", "queue", "init", "invoke"} {
		s := stored.Spans[i]
		e := recv.Spans(coldTC.TraceID.String())[name]
		if s.Name != name || s.SpanID != e.SpanID || s.ParentID != e.ParentID || !near(e.StartTimeUnixNano, s.Start) || !near(e.EndTimeUnixNano, s.End) {
			t.Errorf("stored span %d %+v, exported %s %s..%d", i, s, e.SpanID, e.ParentID, e.StartTimeUnixNano)
		}
	}
	if stored.Spans[0].Attributes["faas.name"] != "hello" || stored.Spans[0].Attributes["stoke.memory_mb"] != int64(256) {
		t.Errorf("stored attributes: %v", stored.Spans[0].Attributes)
	}
	rows, err := st.Traces(ctx, "hello", 10)
	if err != nil || len(rows) != 3 || rows[0].RequestID != "thr-1" || rows[2].RequestID != "cold-1" {
		t.Errorf("traces of hello: %v %v", rows, err)
	}
}

func TestStoredTracesBounded(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tr, st := newTracer(t, trace.Options{Keep: 5, BatchSize: 3})
	if tr.Exporting() {
		t.Fatal("exporting without an endpoint")
	}
	for i := range 12 {
		fn := "a"
		if i%2 == 1 {
			fn = "b"
		}
		rec := &record.Record{RequestID: fmt.Sprint("r", i), Function: fn, Start: time.Now(), Status: 200}
		tr.Trace(rec, trace.NewContext(), rec.Start, rec.Start.Add(time.Millisecond))
	}
	ctx := context.Background()
	if err := tr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	a, _ := st.Traces(ctx, "a", 100)
	b, _ := st.Traces(ctx, "b", 100)
	if len(a)+len(b) != 5 || b[0].RequestID != "r11" || a[0].RequestID != "r10" {
		t.Errorf("kept a=%d b=%d, want the newest 5 of 12", len(a), len(b))
	}
	if _, err := st.Trace(ctx, "r0"); err == nil {
		t.Error("the oldest trace is still there")
	}
}

// BenchmarkTraceEnqueue is what tracing adds to a request after it ended:
// one copy of the record into the queue.
func BenchmarkTraceEnqueue(b *testing.B) {
	b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	b.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tr, _ := newTracer(b, trace.Options{})
	rec := &record.Record{RequestID: "3f9c2a4e-8d1b-4c6e-9a0f-5b7d2e1c8a34", Function: "hello", Version: "1", Start: time.Now(),
		QueueMS: 0.1, DurationMS: 2, BilledMS: 2, MemoryMB: 128, Status: 200, InstanceID: "hello-1-abc", Method: "GET", Path: "/hello"}
	tc := trace.NewContext()
	b.ReportAllocs()
	for b.Loop() {
		tr.Trace(rec, tc, rec.Start, rec.Start)
	}
	b.ReportMetric(float64(tr.Dropped())/float64(b.N), "dropped/op")
}

// BenchmarkTracePipeline is the background cost per trace: spans built,
// encoded and written to SQLite in batches (and exported, with -otlp).
func BenchmarkTracePipeline(b *testing.B) {
	for _, export := range []bool{false, true} {
		b.Run(fmt.Sprintf("otlp=%v", export), func(b *testing.B) {
			b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
			b.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
			if export {
				b.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", otlptest.Start(b).URL())
			}
			tr, _ := newTracer(b, trace.Options{})
			rec := &record.Record{RequestID: "3f9c2a4e-8d1b-4c6e-9a0f-5b7d2e1c8a34", Function: "hello", Version: "1", Start: time.Now(),
				Cold: true, InitMS: 40, QueueMS: 41, DurationMS: 2, BilledMS: 2, MemoryMB: 128, Status: 200, InstanceID: "hello-1-abc", Method: "GET", Path: "/hello"}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				tr.Trace(rec, trace.NewContext(), rec.Start, rec.Start.Add(43*time.Millisecond))
				if i++; i%4096 == 0 {
					_ = tr.Flush(context.Background())
				}
			}
			if err := tr.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			if d := tr.Dropped(); d > 0 {
				b.Fatalf("%d dropped", d)
			}
		})
	}
}
