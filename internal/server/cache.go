package server

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/cache"
	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/record"
)

// caches are the functions' response caches by name. A cache outlives
// deploys, so its counters go on; a new version empties it (SetVersion
// once the new version takes traffic).
type caches struct {
	mu     sync.Mutex
	byName map[string]*cache.Cache
	hits   hitRing
}

// cacheFor returns f's cache configured from its cache block, making it
// on first use; nil when f has no cache block.
func (s *Server) cacheFor(f *config.Function) *cache.Cache {
	if f.Cache == nil {
		return nil
	}
	o := cache.Options{MaxBytes: f.Cache.MaxBytes, DefaultTTL: f.Cache.DefaultTTL, StaleIfCold: f.Cache.StaleIfCold,
		KeyHeaders: f.Cache.KeyHeaders, Logger: s.log}
	s.caches.mu.Lock()
	defer s.caches.mu.Unlock()
	if s.caches.byName == nil {
		s.caches.byName = map[string]*cache.Cache{}
	}
	c := s.caches.byName[f.Name]
	if c == nil {
		c = cache.New(o)
		s.caches.byName[f.Name] = c
	} else {
		c.Configure(o)
	}
	return c
}

// settleCaches runs once a deploy's table is in place: each cache learns
// its function's version (a new one empties it), and the caches of
// functions that no longer have one stop.
func (s *Server) settleCaches(fns map[string]*deployed) {
	s.caches.mu.Lock()
	var gone []*cache.Cache
	for name, c := range s.caches.byName {
		d := fns[name]
		if d == nil || d.gw.Cache != c {
			gone = append(gone, c)
			delete(s.caches.byName, name)
			continue
		}
		c.SetVersion(d.gw.Version)
	}
	s.caches.mu.Unlock()
	for _, c := range gone {
		c.Close()
	}
}

func (s *Server) closeCaches() {
	s.caches.mu.Lock()
	all := s.caches.byName
	s.caches.byName = nil
	s.caches.mu.Unlock()
	for _, c := range all {
		c.Close()
	}
}

// cacheStats reads every cache's counters (metrics, stoke ls).
func (s *Server) cacheStats() map[string]cache.Stats {
	s.caches.mu.Lock()
	defer s.caches.mu.Unlock()
	out := make(map[string]cache.Stats, len(s.caches.byName))
	for name, c := range s.caches.byName {
		out[name] = c.Stats()
	}
	return out
}

// PurgeCache removes entries of a function's cache (stoke cache purge).
func (s *Server) PurgeCache(function string, p cache.Purge) (admin.PurgeResult, error) {
	// This node first: its errors say what is wrong (no such function, no
	// cache block) in the admin API's terms.
	n, err := s.localPurgeCache(function, p)
	if err != nil || s.node == nil {
		return admin.PurgeResult{Purged: n}, err
	}
	// Every node has a cache of its own, filled by the requests its
	// gateway took: a purge that left the others would have them answer
	// the old response until it expires.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	answers, missing, err := s.node.Gather(ctx, "cache-purge", purgeArg{Function: function, Purge: p})
	if err != nil {
		return admin.PurgeResult{Purged: n}, fmt.Errorf("purged %d entries on this node; the other nodes: %w", n, err)
	}
	res := admin.PurgeResult{Purged: n, Missing: missing}
	for _, a := range answers {
		if a.Node == s.node.Name() {
			continue // purged above (its own answer purged nothing more)
		}
		var k int
		if err := json.Unmarshal(a.Data, &k); err != nil {
			return res, fmt.Errorf("node %s's purge: %w", a.Node, err)
		}
		res.Purged += k
	}
	if len(missing) > 0 {
		s.log.Warn("cache purge without some nodes", "function", function, "missing", missing)
	}
	return res, nil
}

// purgeArg is a cache purge sent to every node of a cluster.
type purgeArg struct {
	Function string      `json:"function"`
	Purge    cache.Purge `json:"purge"`
}

// localPurgeCache purges this node's cache of function.
func (s *Server) localPurgeCache(function string, p cache.Purge) (int, error) {
	s.caches.mu.Lock()
	c := s.caches.byName[function]
	s.caches.mu.Unlock()
	if c == nil {
		s.mu.Lock()
		_, exists := s.fns[function]
		s.mu.Unlock()
		if !exists {
			return 0, fmt.Errorf("%w: no function %s", admin.ErrNotFound, function)
		}
		return 0, fmt.Errorf("%w: function %s has no cache block", admin.ErrNoCache, function)
	}
	return c.Purge(p), nil
}

// Hit makes the server the gateway's HitRecorder: a request its cache
// answered is not an invocation (no log lines, no record row, nothing
// billed), but its trace is kept among the recent ones for stoke trace.
func (s *Server) Hit(r *record.Record) { s.caches.hits.add(r) }

// hitRing keeps the records of the latest answers from caches, so their
// traces can be looked up by request id for a while.
type hitRing struct {
	mu   sync.Mutex
	recs []record.Record // made on the first hit: most servers have no cache
	next int
}

const hitRingSize = 4096

func (h *hitRing) add(r *record.Record) {
	h.mu.Lock()
	if h.recs == nil {
		h.recs = make([]record.Record, hitRingSize)
	}
	h.recs[h.next] = *r
	h.next = (h.next + 1) % hitRingSize
	h.mu.Unlock()
}

func (h *hitRing) find(requestID string) (record.Record, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.recs {
		if h.recs[i].RequestID == requestID {
			return h.recs[i], true
		}
	}
	return record.Record{}, false
}
