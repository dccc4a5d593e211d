package trace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

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
	Store *store.Store // nil: traces are not kept
	Keep  int          // traces kept in the store; default 10,000
	// QueueSize bounds ended invocations waiting to become spans; beyond it
	// they are dropped and counted. Default 8,192.
	QueueSize     int
	BatchSize     int           // traces per store transaction; default 256
	FlushInterval time.Duration // longest a trace waits; default 100ms
	Logger        *slog.Logger
}

// Tracer turns ended invocations into spans off the request path: one
// goroutine builds them, exports them when OTLP is configured, and writes
// them to the store in batches.
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
	f    finished
	done chan error // flush
	stop bool
}

// NewTracer starts a Tracer. It exports over OTLP/HTTP when the standard
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set;
// the exporter reads its other OTEL_EXPORTER_OTLP_* settings (headers,
// timeout, compression) itself, and OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES describe the resource (service.name "stoke" by
// default).
func NewTracer(ctx context.Context, o Options) (*Tracer, error) {
	if o.Keep <= 0 {
		o.Keep = 10_000
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 8192
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 100 * time.Millisecond
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

// Dropped is how many traces were lost because the queue was full.
func (t *Tracer) Dropped() int64 { return t.dropped.Load() }

// Trace queues an ended invocation: rec and tc, with the instants the
// record does not keep (invokeStart is zero when no instance ran it). It
// never blocks and copies rec.
func (t *Tracer) Trace(rec *record.Record, tc Context, invokeStart, end time.Time) {
	if t.closed.Load() || !tc.Valid() {
		t.dropped.Add(1)
		return
	}
	select {
	case t.queue <- item{f: finished{rec: *rec, tc: tc, invokeStart: invokeStart, end: end}}:
	default:
		t.dropped.Add(1)
	}
}

// Flush waits until every trace queued before it is stored and exported.
func (t *Tracer) Flush(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case t.queue <- item{done: done}:
	case <-t.stopped:
		return errors.New("trace: closed")
	case <-ctx.Done():
		return fmt.Errorf("trace: flush: %w", ctx.Err())
	}
	var err error
	select {
	case err = <-done:
	case <-t.stopped:
		// Close may have answered it while draining, or never seen it.
		select {
		case err = <-done:
		default:
			return errors.New("trace: closed")
		}
	case <-ctx.Done():
		return fmt.Errorf("trace: flush: %w", ctx.Err())
	}
	if t.provider != nil {
		if ferr := t.provider.ForceFlush(ctx); ferr != nil {
			err = errors.Join(err, fmt.Errorf("trace: exporting: %w", ferr))
		}
	}
	return err
}

// Close handles what is queued, then shuts the exporter down (sending what
// it holds, within ctx). Traces added after Close are dropped. Call it
// before closing the store.
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
	batch := make([]finished, 0, t.o.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var werr error // first write error since the last flush
	write := func() {
		timer.Stop()
		if err := t.write(batch); err != nil {
			t.log.Error("storing traces", "traces", len(batch), "err", err)
			werr = firstErr(werr, err)
		}
		clear(batch)
		batch = batch[:0]
	}
	for {
		select {
		case it := <-t.queue:
			switch {
			case it.stop:
				for len(t.queue) > 0 {
					if it := <-t.queue; it.done == nil && !it.stop {
						batch = append(batch, it.f)
					} else if it.done != nil {
						it.done <- nil
					}
				}
				write()
				return
			case it.done != nil:
				write()
				it.done <- werr
				werr = nil
			default:
				if len(batch) == 0 {
					timer.Reset(t.o.FlushInterval)
				}
				batch = append(batch, it.f)
				if len(batch) >= t.o.BatchSize {
					write()
				}
			}
		case <-timer.C:
			write()
		}
	}
}

func firstErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// write builds the batch's spans, hands them to the exporter and stores them.
func (t *Tracer) write(batch []finished) error {
	if len(batch) == 0 {
		return nil
	}
	rows := make([]store.TraceRow, 0, len(batch))
	for i := range batch {
		f := &batch[i]
		f.queue, f.init = newSpanID(), newSpanID()
		if t.otel != nil {
			t.export(f, build(f))
		}
		if t.o.Store == nil {
			continue
		}
		data, err := f.encode()
		if err != nil {
			return fmt.Errorf("trace: encoding %s: %w", f.rec.RequestID, err)
		}
		rows = append(rows, store.TraceRow{
			RequestID: f.rec.RequestID, TraceID: f.tc.TraceID.String(), Function: f.rec.Function, Start: f.rec.Start, Data: data,
		})
	}
	if t.o.Store == nil {
		return nil
	}
	// Background: a batch taken off the queue is written even during
	// shutdown; SQLite's busy_timeout bounds the wait.
	return t.o.Store.PutTraces(context.Background(), rows, t.o.Keep)
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
