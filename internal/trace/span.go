package trace

import (
	"encoding/binary"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/stokehq/stoke/internal/record"
)

// Trace is one invocation's trace as the admin API serves it, rebuilt from
// the invocation's record (FromRecord).
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
	SpanCache   = "cache"
)

// Stamp puts c on r: a record carries its invocation's trace, and the
// spans are rebuilt from the record (FromRecord) whenever they are wanted.
func (c Context) Stamp(r *record.Record) {
	r.TraceID, r.ParentSpan, r.GatewaySpan, r.InvokeSpan = c.TraceID, c.Parent, c.Gateway, c.Invoke
	r.Sampled = c.Sampled
}

// ContextOf is the trace context Stamp put on r.
func ContextOf(r *record.Record) Context {
	return Context{TraceID: r.TraceID, Parent: r.ParentSpan, Gateway: r.GatewaySpan, Invoke: r.InvokeSpan, Sampled: r.Sampled}
}

// FromRecord rebuilds the trace of a stamped record, by the same build the
// exporter uses: the spans are never stored, only the record.
func FromRecord(r *record.Record) Trace {
	f := finish(r)
	return toTrace(&f, build(&f))
}

// finished is one ended invocation: its record and the ids of its spans.
type finished struct {
	rec         record.Record
	tc          Context
	queue, init oteltrace.SpanID // derived from the gateway span's id
	cache       oteltrace.SpanID
	end         time.Time // the response was out
}

func finish(r *record.Record) finished {
	f := finished{rec: *r, tc: ContextOf(r), end: r.End}
	f.queue, f.init = derivedSpanID(f.tc.Gateway, 1), derivedSpanID(f.tc.Gateway, 2)
	f.cache = derivedSpanID(f.tc.Gateway, 3)
	if f.end.IsZero() {
		// Not stamped with its end: the best the record says.
		f.end = r.Start.Add(msDur(r.CacheMS + r.QueueMS + r.DurationMS))
	}
	return f
}

// derivedSpanID is the n-th span id made from gateway, so the queue and init
// spans, which the function is never told, need not be kept: splitmix64's
// finalizer, a bijection, of gateway's id plus n golden-ratio steps.
func derivedSpanID(gateway oteltrace.SpanID, n uint64) oteltrace.SpanID {
	x := binary.BigEndian.Uint64(gateway[:]) + n*0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	x ^= x >> 31
	if x == 0 {
		x = n
	}
	var s oteltrace.SpanID
	binary.BigEndian.PutUint64(s[:], x)
	return s
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
// cache, for a function with a response cache, the time in it before
// forwarding (or all of it, when the cache answered); queue the wait for an
// instance; init, on a cold start, the instance's start up to the moment it
// was handed over (which is when the queue wait ended); invoke the app's
// work. Attributes follow OpenTelemetry's FaaS and HTTP conventions where
// they fit, stoke.* otherwise.
func build(f *finished) []span {
	r := &f.rec
	queueStart := r.Start.Add(msDur(r.CacheMS))
	queueEnd := queueStart.Add(msDur(r.QueueMS))
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
	spans := []span{gw}
	if r.Cache != "" {
		end := queueStart
		if r.FromCache {
			end = f.end
		}
		spans = append(spans, span{
			name: SpanCache, id: f.cache, parent: f.tc.Gateway, start: r.Start, end: end,
			kind: oteltrace.SpanKindInternal, attrs: []attribute.KeyValue{attribute.String("stoke.cache", r.Cache)},
		})
	}
	if !r.FromCache {
		spans = append(spans, span{
			name: SpanQueue, id: f.queue, parent: f.tc.Gateway, start: queueStart, end: queueEnd,
			kind: oteltrace.SpanKindInternal,
		})
	}
	if r.Cold && r.InitMS > 0 {
		init := span{
			name: SpanInit, id: f.init, parent: f.tc.Gateway, start: queueEnd.Add(-msDur(r.InitMS)), end: queueEnd,
			kind: oteltrace.SpanKindInternal,
			attrs: []attribute.KeyValue{
				attribute.String("faas.instance", r.InstanceID),
				attribute.Bool("faas.coldstart", true),
			},
		}
		if init.start.Before(queueStart) {
			// Part of the init ran before the request came (a python
			// spare's after-fork work, done ahead of demand): the span is
			// what the request waited for; the whole init, as billed,
			// is stoke.init_ms.
			init.start = queueStart
			init.attrs = append(init.attrs, attribute.Float64("stoke.init_ms", r.InitMS))
		}
		spans = append(spans, init)
	}
	if !r.InvokeStart.IsZero() {
		spans = append(spans, span{
			name: SpanInvoke, id: f.tc.Invoke, parent: f.tc.Gateway,
			start: r.InvokeStart, end: r.InvokeStart.Add(msDur(r.DurationMS)),
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
