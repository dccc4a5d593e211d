// Package cache is the gateway's shared HTTP response cache for one
// function (RFC 9111, with RFC 5861's stale-while-revalidate and
// stale-if-error): it answers repeat GETs and HEADs from stored responses,
// revalidates with conditional requests, collapses concurrent misses into
// one invocation, and — Stoke's own allowance, stale_if_cold — answers from
// a recently stale entry at once while the function has no idle instance,
// refreshing it in the background. Every answer says what happened in
// Cache-Status (RFC 9211) and Age. It knows nothing of pools or processes:
// the function is an Origin.
package cache

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Cache: a function's cache block.
type Options struct {
	MaxBytes int64 // memory for the entries; required (> 0)
	// DefaultTTL is the freshness of a response that gives none
	// (Cache-Control max-age/s-maxage, Expires); 0 stores it only to
	// revalidate (when it has a validator).
	DefaultTTL time.Duration
	// StaleIfCold serves an entry up to this long past its freshness while
	// the function has no idle instance, refreshing it in the background.
	StaleIfCold time.Duration
	// KeyHeaders are request headers added to every key, besides what a
	// response's Vary names.
	KeyHeaders []string
	Now        func() time.Time // default time.Now; tests set a clock
	Logger     *slog.Logger
}

// Origin is the function behind the cache, as the gateway gives it for one
// request.
type Origin interface {
	// Forward invokes the function with r and writes its response, or
	// Stoke's error response, to w. It returns the version of the function
	// that answered ("" when none did) and a non-nil error when the response
	// broke off after it had started; the caller must then abort the
	// client's response rather than end it.
	Forward(w http.ResponseWriter, r *http.Request, f Forward) (version string, err error)
	// Warm says whether an instance is idle now: a request would not wait
	// for a cold start.
	Warm() bool
	// Fail answers r when the cache cannot: err is ErrNotCached
	// (only-if-cached and nothing usable is stored), or the cause of r's
	// context ending while r waited for another request's forward.
	Fail(w http.ResponseWriter, r *http.Request, err error)
}

// Forward describes one request the cache passes to the function.
type Forward struct {
	// Kind is Cache-Status' fwd value (RFC 9211): uri-miss (nothing stored
	// for the URL), vary-miss (nothing for this request's Vary and
	// key_headers values), stale, request (the request asked for
	// validation), bypass, method.
	Kind string
	// Background: a refresh the cache makes on its own; nobody waits for
	// the response, which is a new invocation with its own request id.
	Background bool
	// Lookup is the time spent in the cache before forwarding.
	Lookup time.Duration
}

// ErrNotCached answers an only-if-cached request with nothing usable
// stored: the gateway says 504, as RFC 9111 §5.2.1.7 asks.
var ErrNotCached = errors.New("cache: only-if-cached and no usable response is stored")

// Cache is one function's response cache. It lives across deploys; a new
// version empties it (SetVersion). Create it with New; Close it to stop
// background refreshes.
type Cache struct {
	opts    atomic.Pointer[Options]
	version atomic.Pointer[string]
	st      *store
	log     *slog.Logger

	mu      sync.Mutex
	flights map[string]*flight
	passes  map[string]time.Time // keys not collapsed until then (flight.go)
	base    context.Context      // background refreshes; cancelled by Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closed  bool

	results   [7]atomic.Int64 // by Results' order
	refreshes atomic.Int64
}

// New makes an empty cache.
func New(o Options) *Cache {
	o = normalize(o)
	c := &Cache{st: newStore(o.MaxBytes), log: o.Logger, flights: map[string]*flight{}, passes: map[string]time.Time{}}
	c.opts.Store(&o)
	v := ""
	c.version.Store(&v)
	c.base, c.cancel = context.WithCancel(context.Background())
	return c
}

func normalize(o Options) Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	names := make([]string, 0, len(o.KeyHeaders))
	for _, k := range o.KeyHeaders {
		names = append(names, http.CanonicalHeaderKey(k))
	}
	o.KeyHeaders = names
	return o
}

// Configure applies new options (a deploy that changed the cache block);
// the budget shrinks by evicting.
func (c *Cache) Configure(o Options) {
	o = normalize(o)
	c.opts.Store(&o)
	c.st.resize(o.MaxBytes)
}

// SetVersion says which function version now answers. A different one
// empties the cache: entries of the old version go, and a response from
// the old version still in flight is not stored.
func (c *Cache) SetVersion(v string) {
	if *c.version.Load() == v {
		return
	}
	c.version.Store(&v)
	c.st.purge(Purge{All: true})
}

// Purge removes the entries p selects and returns how many.
func (c *Cache) Purge(p Purge) int { return c.st.purge(p) }

// Stats is a snapshot of a cache, for stoke ls, the dashboard and metrics.
type Stats struct {
	Requests  map[Result]int64 `json:"requests"`
	Refreshes int64            `json:"refreshes"` // background refreshes started
	Entries   int              `json:"entries"`
	Bytes     int64            `json:"bytes"`
	MaxBytes  int64            `json:"max_bytes"`
	Evictions int64            `json:"evictions"`
	// Waiting is how many requests wait now for another's forward of the
	// same key (collapsed).
	Waiting int `json:"waiting"`
	// HitRatio is the share of lookups answered without an invocation of
	// their own (hit, stale, collapsed) among all but bypasses; 0 before
	// any.
	HitRatio float64 `json:"hit_ratio"`
}

// Stats reads the counters.
func (c *Cache) Stats() Stats {
	s := Stats{Requests: make(map[Result]int64, len(Results)), Refreshes: c.refreshes.Load(), Evictions: c.st.evictions.Load()}
	for i, r := range Results {
		s.Requests[r] = c.results[i].Load()
	}
	s.Bytes, s.Entries = c.st.usage()
	c.mu.Lock()
	for _, f := range c.flights {
		s.Waiting += f.refs - 1 // the one making the forward does not wait
	}
	c.mu.Unlock()
	s.MaxBytes = c.opts.Load().MaxBytes
	s.ratio()
	return s
}

// ratio sets HitRatio from the counts.
func (s *Stats) ratio() {
	s.HitRatio = 0
	answered := s.Requests[Hit] + s.Requests[Stale] + s.Requests[Collapsed]
	if all := answered + s.Requests[Revalidated] + s.Requests[Miss] + s.Requests[Failed]; all > 0 {
		s.HitRatio = float64(answered) / float64(all)
	}
}

// Add counts o in s: a cluster's view of a function's caches, one per
// node, is their sum (memory and max_bytes too: each node has its own).
func (s *Stats) Add(o Stats) {
	if s.Requests == nil {
		s.Requests = make(map[Result]int64, len(o.Requests))
	}
	for r, n := range o.Requests {
		s.Requests[r] += n
	}
	s.Refreshes += o.Refreshes
	s.Entries += o.Entries
	s.Bytes += o.Bytes
	s.MaxBytes += o.MaxBytes
	s.Evictions += o.Evictions
	s.Waiting += o.Waiting
	s.ratio()
}

func (c *Cache) count(r Result) {
	for i, x := range Results {
		if x == r {
			c.results[i].Add(1)
			return
		}
	}
}

// Close stops background refreshes and waits for them.
func (c *Cache) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}
