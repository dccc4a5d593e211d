// Package gateway is Stoke's front door: it matches a request's path to a
// function, enforces the gateway and function timeouts and the body limit,
// gets an instance from the function's pool and records the invocation.
// It knows nothing about processes.
package gateway

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/stokehq/stoke/internal/cache"
	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/runtime/httpwire"
)

// Pool is what the gateway needs of a function's scheduler.
type Pool interface {
	Acquire(ctx context.Context) (*pool.Lease, error)
	// Idle says whether an instance is ready and free (the response cache
	// answers from a stale entry rather than wait for a cold start).
	Idle() bool
}

// Function is one deployed function version as the gateway serves it.
type Function struct {
	Name     string
	Version  string
	MemoryMB int
	Timeout  time.Duration
	Routes   []string
	Pool     Pool
	// Concurrency is the function's in-flight requests per instance.
	Concurrency int
	// InitBoost is init_boost: a cold start's init runs without the CPU
	// quota. Recorded on the records of cold starts.
	InitBoost bool
	// Cache is the function's response cache, nil for none (cache.go).
	Cache *cache.Cache
}

// Recorder receives each invocation: Begin before the instance is invoked
// (START line), End once it answered (END and REPORT lines, storage).
type Recorder interface {
	Begin(r *record.Record)
	End(r *record.Record)
}

// Tracer receives each invocation once it ended, its record stamped with
// its trace (ids, invoke start, end), to export its spans off the request
// path. The record is all that is stored of a trace.
type Tracer interface {
	Trace(rec *record.Record)
}

// Options configures a Gateway.
type Options struct {
	Timeout      time.Duration // gateway.timeout
	MaxBodyBytes int64
	Granularity  time.Duration // billing granularity
	Recorder     Recorder
	Tracer       Tracer // optional
	Logger       *slog.Logger
	// TrustedProxies are the clients whose X-Forwarded-* and Forwarded
	// claims are kept (gateway.trusted_proxies); see httpwire.Forwarding.
	TrustedProxies []netip.Prefix
}

// Gateway routes HTTP requests to functions. Its zero value is not usable;
// create it with New and give it functions with Set.
type Gateway struct {
	o     Options
	fwd   *httpwire.Forwarding
	table atomic.Pointer[table]
}

// New makes a gateway with no functions.
func New(o Options) *Gateway {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Granularity <= 0 {
		o.Granularity = time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	g := &Gateway{o: o, fwd: httpwire.NewForwarding(o.TrustedProxies)}
	g.table.Store(newTable(nil))
	return g
}

// Set replaces the deployed functions atomically: requests arriving after it
// returns are routed to the new set.
func (g *Gateway) Set(fns []*Function) { g.table.Store(newTable(fns)) }

// Routed says whether a function is routed at path.
func (g *Gateway) Routed(path string) bool { return g.table.Load().match(path) != nil }

// Function returns the deployed function called name, or nil.
func (g *Gateway) Function(name string) *Function { return g.table.Load().byName[name] }
