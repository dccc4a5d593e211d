package trace

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/stokehq/stoke/internal/record"
)

// Trace is one invocation's trace as stored and served by the admin API.
type Trace struct {
	RequestID  string    `json:"request_id"`
	TraceID    string    `json:"trace_id"`
	Function   string    `json:"function"`
	Version    string    `json:"version"`
	Start      time.Time `json:"start"`
	DurationMS float64   `json:"duration_ms"`
	Cold       bool      `json:"cold"`
	Status     int       `json:"status"`
	Spans      []Span    `json:"spans"` // gateway first
}

// Span is one span of a Trace.
type Span struct {
	Name       string         `json:"name"`
	SpanID     string         `json:"span_id"`
	ParentID   string         `json:"parent_id,omitempty"` // the caller's span for gateway, if it sent one
	Start      time.Time      `json:"start"`
	End        time.Time      `json:"end"`
	DurationMS float64        `json:"duration_ms"`
	Error      string         `json:"error,omitempty"` // the error type, when the span failed
	Attributes map[string]any `json:"attributes,omitempty"`
}

// Span names.
const (
	SpanGateway = "gateway"
	SpanQueue   = "queue"
	SpanInit    = "init"
	SpanInvoke  = "invoke"
)

// finished is one ended invocation: the record, the ids, and the two
// instants the record does not keep.
type finished struct {
	rec         record.Record
	tc          Context
	queue, init oteltrace.SpanID // made off the request path, before build
	invokeStart time.Time        // zero when no instance ran it
	end         time.Time        // the response was out
}

// stored is a finished invocation as kept in SQLite. The spans are rebuilt
// from it when read, by the same build the exporter uses: encoding the
// record costs a fraction of encoding four spans with their attributes, and
// the rows are a quarter of the size.
type stored struct {
	Rec                                  record.Record `json:"r"`
	Trace                                string        `json:"t"`
	Parent, Gateway, Queue, Init, Invoke string        `json:",omitempty"`
	Sampled                              bool          `json:"sampled"`
	InvokeStartNS, EndNS                 int64
}

func (f *finished) encode() ([]byte, error) {
	sid := func(id oteltrace.SpanID) string {
		if !id.IsValid() {
			return ""
		}
		return id.String()
	}
	return json.Marshal(stored{
		Rec: f.rec, Trace: f.tc.TraceID.String(), Parent: sid(f.tc.Parent), Gateway: sid(f.tc.Gateway),
		Queue: sid(f.queue), Init: sid(f.init), Invoke: sid(f.tc.Invoke), Sampled: f.tc.Sampled,
		InvokeStartNS: unixNano(f.invokeStart), EndNS: f.end.UnixNano(),
	})
}

// Decode rebuilds a stored trace (store.TraceRow.Data).
func Decode(data []byte) (*Trace, error) {
	var s stored
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("trace: decoding: %w", err)
	}
	f := finished{rec: s.Rec, tc: Context{Sampled: s.Sampled}, end: time.Unix(0, s.EndNS)}
	if s.InvokeStartNS != 0 {
		f.invokeStart = time.Unix(0, s.InvokeStartNS)
	}
	ok := decodeHex(f.tc.TraceID[:], s.Trace)
	for _, id := range []struct {
		dst *oteltrace.SpanID
		hex string
	}{{&f.tc.Parent, s.Parent}, {&f.tc.Gateway, s.Gateway}, {&f.queue, s.Queue}, {&f.init, s.Init}, {&f.tc.Invoke, s.Invoke}} {
		if id.hex != "" {
			ok = ok && decodeHex(id.dst[:], id.hex)
		}
	}
	if !ok {
		return nil, fmt.Errorf("trace: decoding %s: malformed ids", s.Rec.RequestID)
	}
	t := toTrace(&f, build(&f))
	return &t, nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// span is a span before it becomes an OpenTelemetry span or a Span.
type span struct {
	name       string
	id, parent oteltrace.SpanID
	start, end time.Time
	kind       oteltrace.SpanKind
	err        string
	attrs      []attribute.KeyValue
}

// build derives the spans from the record: gateway is the whole request;
// queue the wait for an instance; init, on a cold start, the instance's
// start up to the moment it was handed over (which is when the queue wait
// ended); invoke the app's work. Attributes follow OpenTelemetry's FaaS and
// HTTP conventions where they fit, stoke.* otherwise.
func build(f *finished) []span {
	r := &f.rec
	queueEnd := r.Start.Add(msDur(r.QueueMS))
	errType := r.ErrorType
	if errType == "" && r.Status >= 500 {
		// An app's own 5xx: the HTTP convention's error.type is the status.
		errType = strconv.Itoa(r.Status)
	}
	gw := span{
		name: SpanGateway, id: f.tc.Gateway, parent: f.tc.Parent, start: r.Start, end: f.end,
		kind: oteltrace.SpanKindServer, err: errType,
		attrs: []attribute.KeyValue{
			attribute.String("faas.name", r.Function),
			attribute.String("faas.version", r.Version),
			attribute.String("faas.invocation_id", r.RequestID),
			attribute.String("faas.trigger", "http"),
			attribute.Bool("faas.coldstart", r.Cold),
			attribute.Int64("faas.max_memory", int64(r.MemoryMB)<<20), // bytes, per the convention
			attribute.Int("stoke.memory_mb", r.MemoryMB),
			attribute.Int64("stoke.billed_ms", r.BilledMS),
			attribute.Int("http.response.status_code", r.Status),
		},
	}
	if r.Method != "" {
		gw.attrs = append(gw.attrs, attribute.String("http.request.method", r.Method), attribute.String("url.path", r.Path))
	}
	if r.InstanceID != "" {
		gw.attrs = append(gw.attrs, attribute.String("faas.instance", r.InstanceID))
	}
	if errType != "" {
		gw.attrs = append(gw.attrs, attribute.String("error.type", errType))
	}
	spans := []span{gw, {
		name: SpanQueue, id: f.queue, parent: f.tc.Gateway, start: r.Start, end: queueEnd,
		kind: oteltrace.SpanKindInternal,
	}}
	if r.Cold && r.InitMS > 0 {
		spans = append(spans, span{
			name: SpanInit, id: f.init, parent: f.tc.Gateway, start: queueEnd.Add(-msDur(r.InitMS)), end: queueEnd,
			kind: oteltrace.SpanKindInternal,
			attrs: []attribute.KeyValue{
				attribute.String("faas.instance", r.InstanceID),
				attribute.Bool("faas.coldstart", true),
			},
		})
	}
	if !f.invokeStart.IsZero() {
		spans = append(spans, span{
			name: SpanInvoke, id: f.tc.Invoke, parent: f.tc.Gateway,
			start: f.invokeStart, end: f.invokeStart.Add(msDur(r.DurationMS)),
			kind: oteltrace.SpanKindClient, err: r.ErrorType,
			attrs: []attribute.KeyValue{
				attribute.String("faas.instance", r.InstanceID),
				attribute.String("faas.invocation_id", r.RequestID),
				attribute.Int64("stoke.billed_ms", r.BilledMS),
				attribute.Int("stoke.max_memory_used_mb", r.MaxMemoryMB),
			},
		})
		if r.ErrorType != "" {
			spans[len(spans)-1].attrs = append(spans[len(spans)-1].attrs, attribute.String("error.type", r.ErrorType))
		}
	}
	return spans
}

// toTrace is the stored form of f's spans.
func toTrace(f *finished, spans []span) Trace {
	r := &f.rec
	t := Trace{
		RequestID: r.RequestID, TraceID: f.tc.TraceID.String(), Function: r.Function, Version: r.Version,
		Start: r.Start, DurationMS: ms(f.end.Sub(r.Start)), Cold: r.Cold, Status: r.Status,
		Spans: make([]Span, len(spans)),
	}
	for i, s := range spans {
		out := Span{Name: s.name, SpanID: s.id.String(), Start: s.start, End: s.end, DurationMS: ms(s.end.Sub(s.start)), Error: s.err}
		if s.parent.IsValid() {
			out.ParentID = s.parent.String()
		}
		if len(s.attrs) > 0 {
			out.Attributes = make(map[string]any, len(s.attrs))
			for _, kv := range s.attrs {
				out.Attributes[string(kv.Key)] = kv.Value.AsInterface()
			}
		}
		t.Spans[i] = out
	}
	return t
}

func msDur(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }
func ms(d time.Duration) float64     { return float64(d.Nanoseconds()) / 1e6 }
