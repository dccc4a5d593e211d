package cache

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// store holds a function's entries within a byte budget. Eviction is SIEVE
// (Zhang et al., NSDI 2024): like LRU it keeps what is used, but a hit only
// sets a flag, so lookups share a read lock, and one-hit wonders leave
// before entries that were used again (on web traces its miss ratio is
// below LRU's). No library fits: golang-lru bounds entries by count, not
// by bytes.
type store struct {
	mu      sync.RWMutex
	buckets map[string]*bucket // by URI key
	// The SIEVE queue: head newest; the hand walks from tail to head.
	head, tail, hand *entry
	bytes, max       int64
	entries          int
	maxEntry         int64

	evictions atomic.Int64
	// purges counts purges, so a response fetched before one is not stored
	// after it (put's gen).
	purges atomic.Int64
}

// bucket holds the variants of one URI, newest first.
type bucket struct{ variants []*entry }

// maxVariants bounds the entries of one URI: past it the oldest goes, so
// requests with ever-new values of a Vary header cannot crowd out others.
const maxVariants = 32

func newStore(maxBytes int64) *store {
	s := &store{buckets: map[string]*bucket{}}
	s.resize(maxBytes)
	return s
}

// maxEntryShare: one entry takes at most this share of the budget, so one
// large response cannot flush the whole cache.
const maxEntryShare = 8

func (s *store) resize(maxBytes int64) {
	s.mu.Lock()
	s.max = maxBytes
	s.maxEntry = maxBytes / maxEntryShare
	for s.bytes > s.max && s.tail != nil {
		s.evictLocked()
	}
	s.mu.Unlock()
}

// entryLimit is the largest body an entry may have.
func (s *store) entryLimit() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.maxEntry
}

// lookup finds the newest entry for uri whose variant matches r. found says
// whether uri had any entry at all (a uri-miss or a vary-miss).
func (s *store) lookup(uri string, r *http.Request, extra string) (e *entry, found bool) {
	s.mu.RLock()
	b := s.buckets[uri]
	if b != nil {
		found = true
		for _, v := range b.variants {
			if v.matches(r, extra) {
				e = v
				break
			}
		}
	}
	s.mu.RUnlock()
	if e != nil && !e.visited.Load() {
		e.visited.Store(true)
	}
	return e, found
}

// put inserts e, replacing old (the entry it refreshes, may be nil) and any
// variant that would answer the same request. It reports false when e is
// too large to keep, or a purge happened since gen was read (purges.Load
// when the forward started).
func (s *store) put(e *entry, old *entry, r *http.Request, gen int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.size > s.maxEntry || s.purges.Load() != gen {
		return false
	}
	b := s.buckets[e.uri]
	if b == nil {
		b = &bucket{}
		s.buckets[e.uri] = b
	}
	for i := 0; i < len(b.variants); {
		v := b.variants[i]
		if v == old || v.matches(r, e.extra) {
			s.unlinkLocked(v)
			b.variants = append(b.variants[:i], b.variants[i+1:]...)
			continue
		}
		i++
	}
	b.variants = append([]*entry{e}, b.variants...)
	if len(b.variants) > maxVariants {
		last := b.variants[len(b.variants)-1]
		b.variants = b.variants[:len(b.variants)-1]
		s.unlinkLocked(last)
		s.evictions.Add(1)
	}
	e.next = s.head
	if s.head != nil {
		s.head.prev = e
	}
	s.head = e
	if s.tail == nil {
		s.tail = e
	}
	s.bytes += e.size
	s.entries++
	for s.bytes > s.max && s.tail != nil {
		s.evictLocked()
	}
	return !e.removed
}

// gone says whether e is no longer stored.
func (s *store) gone(e *entry) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return e.removed
}

// remove drops e if it is still stored (a refresh found it gone or no
// longer storable).
func (s *store) remove(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[e.uri]
	if b == nil {
		return
	}
	for i, v := range b.variants {
		if v == e {
			b.variants = append(b.variants[:i], b.variants[i+1:]...)
			s.unlinkLocked(e)
			break
		}
	}
	if len(b.variants) == 0 {
		delete(s.buckets, e.uri)
	}
}

// evictLocked removes one entry: from the hand towards the head, the first
// not visited since the hand last passed it, clearing the flags it passes.
func (s *store) evictLocked() {
	p := s.hand
	if p == nil {
		p = s.tail
	}
	for p.visited.Load() {
		p.visited.Store(false)
		p = p.prev
		if p == nil {
			p = s.tail
		}
	}
	s.hand = p.prev
	s.dropLocked(p)
	s.evictions.Add(1)
}

// dropLocked removes e from its bucket and the queue.
func (s *store) dropLocked(e *entry) {
	if b := s.buckets[e.uri]; b != nil {
		for i, v := range b.variants {
			if v == e {
				b.variants = append(b.variants[:i], b.variants[i+1:]...)
				break
			}
		}
		if len(b.variants) == 0 {
			delete(s.buckets, e.uri)
		}
	}
	s.unlinkLocked(e)
}

// unlinkLocked takes e out of the queue (not out of its bucket).
func (s *store) unlinkLocked(e *entry) {
	if e.removed {
		return
	}
	e.removed = true
	if s.hand == e {
		s.hand = e.prev
	}
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
	s.bytes -= e.size
	s.entries--
}

// Purge says which entries to remove: All, or those whose path is Path
// (with any query, unless Path has one: then only that query), or starts
// with Prefix.
type Purge struct {
	All    bool
	Path   string
	Prefix string
}

func (p Purge) match(e *entry) bool {
	switch {
	case p.All:
		return true
	case p.Path != "":
		if strings.Contains(p.Path, "?") {
			return e.path+"?"+e.query == p.Path
		}
		return e.path == p.Path
	case p.Prefix != "":
		return strings.HasPrefix(e.path, p.Prefix)
	}
	return false
}

// purge removes the entries p matches and returns how many.
func (s *store) purge(p Purge) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purges.Add(1)
	n := 0
	for e := s.head; e != nil; {
		next := e.next
		if p.match(e) {
			s.dropLocked(e)
			n++
		}
		e = next
	}
	return n
}

// invalidate removes every entry of a URI (RFC 9111 §4.4).
func (s *store) invalidate(uri string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[uri]
	if b == nil {
		return 0
	}
	n := len(b.variants)
	for _, v := range b.variants {
		s.unlinkLocked(v)
	}
	delete(s.buckets, uri)
	return n
}

// usage is the bytes and entries held.
func (s *store) usage() (bytes int64, entries int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.bytes, s.entries
}
