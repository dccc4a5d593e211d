// Package record defines the one record every invocation yields, and renders
// it as Lambda's START/END/REPORT log lines.
package record

import "time"

// Record is one invocation, as stored, logged and (later) traced and priced.
type Record struct {
	RequestID   string
	Function    string
	Version     string
	Start       time.Time
	Cold        bool
	InitMS      float64 // process start → ready; 0 when warm
	InitBoost   bool    // this cold start's init ran with init boost (no CPU quota); false when warm
	QueueMS     float64 // waiting for an instance
	DurationMS  float64 // the invocation itself
	BilledMS    int64   // DurationMS rounded up to the billing granularity
	MemoryMB    int
	MaxMemoryMB int
	Status      int    // HTTP status sent to the client
	ErrorType   string // e.g. "Runtime.OutOfMemory", "Sandbox.Timedout"; empty on success
	// ErrorMessage is what Stoke said about ErrorType ("Runtime exited with
	// error: exit status 3", "Task timed out after 3.00 seconds"); empty for
	// an error the function reported itself.
	ErrorMessage string `json:",omitempty"`
	InstanceID   string
	// Node is the cluster node whose store holds the record (set by the
	// cluster's merged view; empty on one node).
	Node         string `json:",omitempty"`
	Method, Path string
	// Cache is what the function's response cache did ("" for a function
	// without one): for an invocation, why it was forwarded (uri-miss,
	// vary-miss, stale, request, bypass, method; refresh for the
	// cache's own background refresh); for a request answered without one
	// (not stored as an invocation, see gateway.HitRecorder), hit, stale,
	// collapsed or error. CacheMS is the time spent in the cache before
	// forwarding, or answering.
	Cache   string  `json:"cache,omitempty"`
	CacheMS float64 `json:"cache_ms,omitempty"`
	// FromCache: the cache answered the request itself; nothing was
	// invoked or billed, and the record is not stored with the
	// invocations.
	FromCache bool `json:"from_cache,omitempty"`

	// The invocation's trace, which internal/trace rebuilds the spans from.
	// Not part of the JSON the admin API serves as an invocation (its trace
	// is served on its own).
	TraceID    [16]byte `json:"-"` // zero when not traced
	ParentSpan [8]byte  `json:"-"` // the caller's span; zero when the trace started here
	// GatewaySpan and InvokeSpan are the ids of those spans (the function
	// was told InvokeSpan as its parent).
	GatewaySpan, InvokeSpan [8]byte   `json:"-"`
	Sampled                 bool      `json:"-"`
	InvokeStart             time.Time `json:"-"` // the instance got the request; zero when none ran it
	End                     time.Time `json:"-"` // the response was out
}
