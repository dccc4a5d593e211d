package cache

import (
	"context"
	"time"
)

// flight is one forward in progress for a key, which concurrent requests
// for the same key wait on instead of forwarding their own (request
// collapsing). golang.org/x/sync/singleflight does not fit: its waiters
// cannot give up on their own context, and here the forward must go on for
// the others when the request that started it leaves, and stop when all
// have.
type flight struct {
	key  string
	done chan struct{} // closed once the result is set
	// ctx is the forward's: it ends when every request waiting on the
	// flight has gone (refs reaches 0), with the last one's cause (a
	// gateway timeout is not a client that went away), or for a background
	// refresh when the cache closes.
	ctx    context.Context
	cancel context.CancelCauseFunc
	refs   int // under Cache.mu

	// The result, set before done closes: the entry to answer from (nil
	// when the response may not be reused), and how it was obtained.
	entry     *entry
	fwd       string
	fwdStatus int
}

// join returns the flight for key, starting one (leader true) when none is
// in progress. parent gives the new flight's values; its cancellation does
// not carry over.
func (c *Cache) join(key string, parent context.Context) (f *flight, leader bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f = c.flights[key]; f != nil {
		f.refs++
		return f, false
	}
	f = &flight{key: key, done: make(chan struct{}), refs: 1}
	f.ctx, f.cancel = context.WithCancelCause(context.WithoutCancel(parent))
	c.flights[key] = f
	return f, true
}

// startBackground registers a background refresh for key unless a forward
// for it is already in progress (or the cache is closed): nil then.
func (c *Cache) startBackground(key string) *flight {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.flights[key] != nil {
		return nil
	}
	f := &flight{key: key, done: make(chan struct{}), refs: 1}
	f.ctx, f.cancel = context.WithCancelCause(c.base)
	c.flights[key] = f
	c.wg.Add(1)
	return f
}

// leave drops the interest of a waiter whose context ended with cause;
// with none left the forward is cancelled with that cause, and later
// requests start their own.
func (c *Cache) leave(f *flight, cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.refs--
	if f.refs > 0 {
		return
	}
	if c.flights[f.key] == f {
		delete(c.flights, f.key)
	}
	f.cancel(cause)
}

// land publishes the flight's result and wakes its waiters.
func (c *Cache) land(f *flight, e *entry, fwd string, fwdStatus int) {
	f.entry, f.fwd, f.fwdStatus = e, fwd, fwdStatus
	c.mu.Lock()
	if c.flights[f.key] == f {
		delete(c.flights, f.key)
	}
	c.mu.Unlock()
	close(f.done)
	f.cancel(nil)
}

// Keys whose last response could not be stored are not collapsed for a
// while ("hit-for-pass", as Varnish calls it): otherwise concurrent
// requests for an uncacheable URL would wait for each other's responses
// only to be forwarded one after another.
const (
	passFor   = time.Minute
	maxPasses = 10000 // past it the marks are forgotten: they only save waiting
)

func (c *Cache) markPass(key string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.passes) >= maxPasses {
		clear(c.passes)
	}
	c.passes[key] = now.Add(passFor)
}

func (c *Cache) clearPass(key string) {
	c.mu.Lock()
	delete(c.passes, key)
	c.mu.Unlock()
}

// passing says whether key's last response could not be stored, lately.
func (c *Cache) passing(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.passes[key]
	if ok && now.After(until) {
		delete(c.passes, key)
		return false
	}
	return ok
}
