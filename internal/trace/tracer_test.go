package trace_test

import (
	"context"
	"errors"
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

// ended is what the gateway does once an invocation ended: the record is
// stamped with its trace and the two instants, stored, and handed to the
// Tracer.
func ended(tr *trace.Tracer, st *store.Store, rec *record.Record, tc trace.Context, invokeStart, end time.Time) {
	tc.Stamp(rec)
	rec.InvokeStart, rec.End = invokeStart, end
	st.Add(rec)
	tr.Trace(rec)
}

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
	ended(tr, st, cold, coldTC, invokeStart, end)

	warm := *cold
	warm.RequestID, warm.Cold, warm.InitMS, warm.QueueMS, warm.Status, warm.ErrorType = "warm-1", false, 0, 0.05, 502, "Runtime.ExitError"
	warmTC := trace.NewContext()
	ended(tr, st, &warm, warmTC, start.Add(msDur(0.1)), start.Add(msDur(4.3)))

	throttled := &record.Record{RequestID: "thr-1", Function: "hello", Version: "2", Start: start, QueueMS: 0.02,
		MemoryMB: 256, Status: 429, ErrorType: "TooManyRequestsException", Method: "GET", Path: "/hello"}
	thrTC := trace.NewContext()
	ended(tr, st, throttled, thrTC, time.Time{}, start.Add(msDur(0.03)))

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

	// The same spans are rebuilt from the stored record.
	row, err := st.Trace(ctx, "cold-1")
	if err != nil {
		t.Fatal(err)
	}
	stored := trace.FromRecord(&row)
	if trace.ContextOf(&row) != coldTC || stored.TraceID != coldTC.TraceID.String() || !stored.Cold || len(stored.Spans) != 4 ||
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

func TestStoredTracesAreRecords(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tr, st := newTracer(t, trace.Options{})
	if tr.Exporting() {
		t.Fatal("exporting without an endpoint")
	}
	start := time.Now()
	for i := range 12 {
		fn := "a"
		if i%2 == 1 {
			fn = "b"
		}
		rec := &record.Record{RequestID: fmt.Sprint("r", i), Function: fn, Start: start, Status: 200}
		if i == 0 {
			st.Add(rec) // a record without a trace, as written before traces were kept on records
			continue
		}
		ended(tr, st, rec, trace.NewContext(), start, start.Add(time.Millisecond))
	}
	ctx := context.Background()
	if err := tr.Flush(ctx); err != nil { // flushes the store
		t.Fatal(err)
	}
	if d := tr.Dropped(); d != 0 {
		t.Errorf("%d dropped when not exporting", d)
	}
	a, _ := st.Traces(ctx, "a", 100)
	b, _ := st.Traces(ctx, "b", 3)
	if len(a) != 5 || len(b) != 3 || b[0].RequestID != "r11" || a[0].RequestID != "r10" || a[4].RequestID != "r2" {
		t.Errorf("traces a=%d b=%d, want a's 5 traced records and b's newest 3", len(a), len(b))
	}
	if _, err := st.Trace(ctx, "r0"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a record without a trace: %v", err)
	}
	if _, err := st.Record(ctx, "r0"); err != nil {
		t.Errorf("the record itself: %v", err)
	}
	got, err := st.Trace(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	tt := trace.FromRecord(&got)
	if len(tt.Spans) != 3 || tt.Spans[1].SpanID == tt.Spans[0].SpanID || math.Abs(tt.DurationMS-1) > 0.001 {
		t.Errorf("rebuilt %+v", tt)
	}
	if again := trace.FromRecord(&got); again.Spans[1].SpanID != tt.Spans[1].SpanID {
		t.Error("the queue span's id changes between reads")
	}
}

// BenchmarkTraceEnqueue is what tracing adds to a request after it ended,
// when not exporting: nothing beyond the stamped record.
func BenchmarkTraceEnqueue(b *testing.B) {
	b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	b.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tr, _ := newTracer(b, trace.Options{})
	rec := &record.Record{RequestID: "3f9c2a4e-8d1b-4c6e-9a0f-5b7d2e1c8a34", Function: "hello", Version: "1", Start: time.Now(),
		QueueMS: 0.1, DurationMS: 2, BilledMS: 2, MemoryMB: 128, Status: 200, InstanceID: "hello-1-abc", Method: "GET", Path: "/hello"}
	trace.NewContext().Stamp(rec)
	b.ReportAllocs()
	for b.Loop() {
		tr.Trace(rec)
	}
	b.ReportMetric(float64(tr.Dropped())/float64(b.N), "dropped/op")
}

// BenchmarkTracePipeline is the background cost per invocation of keeping
// (and, with otlp=true, exporting) its trace: the record, stamped, written
// to SQLite in the store's batches, and its spans built and exported.
func BenchmarkTracePipeline(b *testing.B) {
	for _, export := range []bool{false, true} {
		b.Run(fmt.Sprintf("otlp=%v", export), func(b *testing.B) {
			b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
			b.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
			if export {
				b.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", otlptest.Start(b).URL())
			}
			tr, st := newTracer(b, trace.Options{})
			rec := &record.Record{RequestID: "3f9c2a4e-8d1b-4c6e-9a0f-5b7d2e1c8a34", Function: "hello", Version: "1", Start: time.Now(),
				Cold: true, InitMS: 40, QueueMS: 41, DurationMS: 2, BilledMS: 2, MemoryMB: 128, Status: 200, InstanceID: "hello-1-abc", Method: "GET", Path: "/hello"}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ended(tr, st, rec, trace.NewContext(), rec.Start.Add(41*time.Millisecond), rec.Start.Add(43*time.Millisecond))
				if i++; i%4096 == 0 {
					_ = tr.Flush(context.Background())
				}
			}
			if err := tr.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			if d := tr.Dropped() + st.Dropped(); d > 0 {
				b.Fatalf("%d dropped", d)
			}
		})
	}
}

// BenchmarkFromRecord is the cost of reading a trace: its spans rebuilt
// from the record.
func BenchmarkFromRecord(b *testing.B) {
	start := time.Now()
	rec := &record.Record{RequestID: "3f9c2a4e-8d1b-4c6e-9a0f-5b7d2e1c8a34", Function: "hello", Version: "1", Start: start,
		Cold: true, InitMS: 40, QueueMS: 41, DurationMS: 2, BilledMS: 2, MemoryMB: 128, Status: 200, InstanceID: "hello-1-abc", Method: "GET", Path: "/hello",
		InvokeStart: start.Add(41 * time.Millisecond), End: start.Add(43 * time.Millisecond)}
	trace.NewContext().Stamp(rec)
	b.ReportAllocs()
	for b.Loop() {
		_ = trace.FromRecord(rec)
	}
}
