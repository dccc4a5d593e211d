package trace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/store"
)

// Options configures a Tracer; zero fields take the defaults.
type Options struct {
	// Store is where the records, which carry the traces, are written; Flush
	// waits for it too. nil: Flush waits only for the exporter.
	Store *store.Store
	// QueueSize bounds ended invocations waiting to be exported; beyond it
	// they are dropped and counted. Default 8,192.
	QueueSize int
	Logger    *slog.Logger
}

// Tracer exports the spans of ended invocations over OTLP, off the request
// path: one goroutine builds them from the records and hands them to the
// SDK's batching exporter. Without an OTLP endpoint it does nothing: the
// stored traces are the records themselves (FromRecord).
type Tracer struct {
	o        Options
	log      *slog.Logger
	provider *sdktrace.TracerProvider // nil unless exporting
	otel     oteltrace.Tracer

	queue   chan item
	stopped chan struct{}
	closed  atomic.Bool
	dropped atomic.Int64
	once    sync.Once
}

type item struct {
	rec  record.Record
	done chan struct{} // flush
	stop bool
}

// NewTracer starts a Tracer. It exports over OTLP/HTTP when the standard
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set;
// the exporter reads its other OTEL_EXPORTER_OTLP_* settings (headers,
// timeout, compression) itself, and OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES describe the resource (service.name "stoke" by
// default).
func NewTracer(ctx context.Context, o Options) (*Tracer, error) {
	if o.QueueSize <= 0 {
		o.QueueSize = 8192
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	t := &Tracer{o: o, log: o.Logger.With("component", "trace"), queue: make(chan item, o.QueueSize), stopped: make(chan struct{})}
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("trace: OTLP exporter: %w", err)
		}
		res, err := resource.New(ctx,
			resource.WithAttributes(attribute.String("service.name", "stoke")),
			resource.WithFromEnv(), // after, so OTEL_SERVICE_NAME wins
			resource.WithTelemetrySDK(),
			resource.WithHost(),
		)
		if err != nil {
			return nil, fmt.Errorf("trace: resource: %w", err)
		}
		t.provider = sdktrace.NewTracerProvider(
			sdktrace.WithBatcher(exp),
			sdktrace.WithResource(res),
			sdktrace.WithIDGenerator(presetIDs{}),
			// Fixed rather than OTEL_TRACES_SAMPLER: the function was
			// already told "sampled" before the spans existed.
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
		)
		t.otel = t.provider.Tracer("github.com/stokehq/stoke/internal/trace")
	}
	go t.run()
	return t, nil
}

// Exporting says whether spans go to an OTLP endpoint.
func (t *Tracer) Exporting() bool { return t.provider != nil }

// Dropped is how many traces were not exported because the queue was full
// (or the Tracer closed).
func (t *Tracer) Dropped() int64 { return t.dropped.Load() }

// Trace queues an ended invocation's record, stamped with its trace
// (Context.Stamp), for export. It never blocks and copies rec; it does
// nothing when not exporting.
func (t *Tracer) Trace(rec *record.Record) {
	if t.provider == nil || rec.TraceID == ([16]byte{}) {
		return
	}
	if t.closed.Load() {
		t.dropped.Add(1)
		return
	}
	select {
	case t.queue <- item{rec: *rec}:
	default:
		t.dropped.Add(1)
	}
}

// Flush waits until every invocation queued before it is exported, and
// every record the store got before it is written.
func (t *Tracer) Flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case t.queue <- item{done: done}:
	case <-t.stopped:
		return errors.New("trace: closed")
	case <-ctx.Done():
		return fmt.Errorf("trace: flush: %w", ctx.Err())
	}
	select {
	case <-done:
	case <-t.stopped:
		// Close may have answered it while draining, or never seen it.
		select {
		case <-done:
		default:
			return errors.New("trace: closed")
		}
	case <-ctx.Done():
		return fmt.Errorf("trace: flush: %w", ctx.Err())
	}
	var err error
	if t.provider != nil {
		if ferr := t.provider.ForceFlush(ctx); ferr != nil {
			err = fmt.Errorf("trace: exporting: %w", ferr)
		}
	}
	if t.o.Store != nil {
		err = errors.Join(err, t.o.Store.Flush(ctx))
	}
	return err
}

// Close exports what is queued, then shuts the exporter down (sending what
// it holds, within ctx). Invocations traced after Close are dropped.
func (t *Tracer) Close(ctx context.Context) error {
	var err error
	t.once.Do(func() {
		t.closed.Store(true)
		t.queue <- item{stop: true} // the goroutine is draining, so this cannot block for long
		<-t.stopped
		if t.provider != nil {
			if e := t.provider.Shutdown(ctx); e != nil {
				err = fmt.Errorf("trace: shutting the exporter down: %w", e)
			}
		}
	})
	return err
}

func (t *Tracer) run() {
	defer close(t.stopped)
	for it := range t.queue {
		switch {
		case it.stop:
			for len(t.queue) > 0 {
				switch it := <-t.queue; {
				case it.done != nil:
					close(it.done)
				case !it.stop:
					t.exportRecord(&it.rec)
				}
			}
			return
		case it.done != nil:
			close(it.done)
		default:
			t.exportRecord(&it.rec)
		}
	}
}

// exportRecord builds rec's spans and hands them to the SDK's batcher.
func (t *Tracer) exportRecord(rec *record.Record) {
	if t.otel == nil {
		return
	}
	f := finish(rec)
	t.export(&f, build(&f))
}

// export replays spans through the SDK with their own timestamps and ids
// (presetIDs hands the SDK the ids the function was already told), so the
// exported trace is the one the function joined.
func (t *Tracer) export(f *finished, spans []span) {
	root := context.Background()
	if f.tc.Parent.IsValid() {
		flags := oteltrace.TraceFlags(0)
		if f.tc.Sampled {
			flags = oteltrace.FlagsSampled
		}
		root = oteltrace.ContextWithRemoteSpanContext(root, oteltrace.NewSpanContext(oteltrace.SpanContextConfig{
			TraceID: f.tc.TraceID, SpanID: f.tc.Parent, TraceFlags: flags, Remote: true,
		}))
	}
	var parent context.Context
	for _, s := range spans {
		ctx := root
		if s.name != SpanGateway {
			ctx = parent
		}
		ctx = context.WithValue(ctx, idsKey{}, presetID{f.tc.TraceID, s.id})
		ctx, sp := t.otel.Start(ctx, s.name, oteltrace.WithTimestamp(s.start), oteltrace.WithSpanKind(s.kind),
			oteltrace.WithAttributes(s.attrs...))
		if s.err != "" {
			sp.SetStatus(codes.Error, s.err)
		}
		sp.End(oteltrace.WithTimestamp(s.end))
		if s.name == SpanGateway {
			parent = ctx
		}
	}
}

// presetIDs is an IDGenerator that returns the ids put in the context:
// Stoke picks ids before the invocation and builds the spans after it.
type presetIDs struct{}

type idsKey struct{}

type presetID struct {
	trace oteltrace.TraceID
	span  oteltrace.SpanID
}

func (presetIDs) NewIDs(ctx context.Context) (oteltrace.TraceID, oteltrace.SpanID) {
	if p, ok := ctx.Value(idsKey{}).(presetID); ok {
		return p.trace, p.span
	}
	c := NewContext()
	return c.TraceID, c.Gateway
}

func (presetIDs) NewSpanID(ctx context.Context, _ oteltrace.TraceID) oteltrace.SpanID {
	if p, ok := ctx.Value(idsKey{}).(presetID); ok {
		return p.span
	}
	return newSpanID()
}
