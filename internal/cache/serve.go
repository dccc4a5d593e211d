package cache

import (
	"context"
	"net/http"
	"time"
)

// Serve answers r from the cache or through o, and says how. A response
// that broke off midway aborts the client's (panics with
// http.ErrAbortHandler, as a handler should), after the cache's own state
// is settled.
func (c *Cache) Serve(w http.ResponseWriter, r *http.Request, o Origin) Result {
	t0 := time.Now()
	opts := c.opts.Load()
	if kind := bypass(r); kind != "" {
		c.pass(w, r, o, kind, time.Since(t0))
		return Bypass
	}
	req := parseDirectives(r.Header)
	uri, extra := uriKey(r), headerKey(r.Header, opts.KeyHeaders)
	e, found := c.st.lookup(uri, r, extra)
	fwd := "uri-miss"
	if found {
		fwd = "vary-miss"
	}
	if e != nil {
		now := opts.Now()
		age := e.t.age(now)
		ttl := e.t.lifetime - age
		if fresh(e, req, age, ttl) {
			e.write(w, r, now, status{hit: true, ttl: ttl, hasTTL: true}.String())
			c.count(Hit)
			return Hit
		}
		fwd = "stale"
		if ttl > 0 && !e.cc.noCache {
			fwd = "request" // fresh, but the request wants it validated
		}
		if ttl <= 0 && !demandsOrigin(req, age) {
			if detail := c.staleAnswer(e, req, -ttl, opts, o); detail != "" {
				e.write(w, r, now, status{hit: true, ttl: ttl, hasTTL: true, detail: detail}.String())
				if detail != "max-stale" {
					// Out before the refresh (maybe a cold start) competes
					// for the CPU.
					_ = http.NewResponseController(w).Flush()
					c.refresh(r, o, e, uri, extra)
				}
				c.count(Stale)
				return Stale
			}
		}
	}
	if req.onlyIf {
		giveUp(w, status{fwd: fwd, detail: "only-if-cached"})
		o.Fail(w, r, ErrNotCached)
		c.count(Failed)
		return Failed
	}
	if r.Method == http.MethodHead || req.noStore {
		// Answered by the function alone: a HEAD's response has no body to
		// store, and no-store asks that nothing of it be kept.
		return c.alone(w, r, o, req, uri, extra, fwd, time.Since(t0), true)
	}
	if e == nil && c.passing(uri+extra, opts.Now()) {
		return c.alone(w, r, o, req, uri, extra, fwd, time.Since(t0), false)
	}
	return c.collapse(w, r, o, req, e, uri, extra, fwd, time.Since(t0))
}

// giveUp marks an answer the cache gives up on, before Origin.Fail writes
// it: every response of a cached function says what the cache did. No
// Age: nothing came from the cache (RFC 9111 §5.1).
func giveUp(w http.ResponseWriter, st status) {
	w.Header().Set("Cache-Status", st.String())
}

// staleAnswer says which allowance lets e, stale by staleness, answer now
// without waiting for the function ("" for none): the response's
// stale-while-revalidate, stale_if_cold while no instance is idle, or the
// request's max-stale.
func (c *Cache) staleAnswer(e *entry, req directives, staleness time.Duration, opts *Options, o Origin) string {
	switch {
	case whileRevalidate(e, staleness):
		return "stale-while-revalidate"
	case opts.StaleIfCold > 0 && whileCold(e, staleness, opts.StaleIfCold) && !o.Warm():
		return "stale-if-cold"
	case maxStale(e, req, staleness):
		return "max-stale"
	}
	return ""
}

// pass forwards a request the cache does not answer, marking the response;
// a successful unsafe request invalidates what is stored for its URI (RFC
// 9111 §4.4).
func (c *Cache) pass(w http.ResponseWriter, r *http.Request, o Origin, kind string, lookup time.Duration) {
	fl := c.newFill(w, r, directives{}, "", "", nil, kind)
	fl.noPut = true
	version, err := o.Forward(fl, r, Forward{Kind: kind, Lookup: lookup})
	fl.finish(version, err)
	if unsafe(r.Method) && err == nil && fl.status >= 200 && fl.status < 400 {
		c.st.invalidate(uriKey(r))
	}
	c.count(Bypass)
	if err != nil && fl.sent {
		panic(http.ErrAbortHandler)
	}
}

// alone forwards r on its own: no collapsing, no conditional request of the
// cache's. noPut keeps the response out of the cache.
func (c *Cache) alone(w http.ResponseWriter, r *http.Request, o Origin, req directives, uri, extra, fwd string, lookup time.Duration, noPut bool) Result {
	fl := c.newFill(w, r, req, uri, extra, nil, fwd)
	fl.noPut = noPut
	version, err := o.Forward(fl, stripConditions(r, r.Context(), nil), Forward{Kind: fwd, Lookup: lookup})
	c.notePass(fl, fl.finish(version, err), err)
	c.count(Miss)
	if err != nil && fl.sent {
		panic(http.ErrAbortHandler)
	}
	return Miss
}

// collapse forwards r, or waits for the forward of the same key already in
// progress and answers from its result.
func (c *Cache) collapse(w http.ResponseWriter, r *http.Request, o Origin, req directives, stale *entry, uri, extra, fwd string, lookup time.Duration) Result {
	var prevFwd string
	var prevStatus int
	for round := 0; ; round++ {
		f, leader := c.join(uri+extra, r.Context())
		if leader && round > 0 {
			// Another request for this variant may have stored it and
			// landed its flight between this one's lookup below and the
			// join: answer from that, and hand it to any who joined since.
			if e, _ := c.st.lookup(uri, r, extra); e != nil {
				if res, ok := c.answerCollapsed(w, r, req, e, extra, prevFwd, prevStatus); ok {
					c.land(f, e, prevFwd, prevStatus)
					return res
				}
			}
		}
		if leader {
			return c.lead(w, r, o, f, req, stale, uri, extra, fwd, lookup)
		}
		stop := context.AfterFunc(r.Context(), func() { c.leave(f, context.Cause(r.Context())) })
		select {
		case <-f.done:
			stop()
		case <-r.Context().Done():
			giveUp(w, status{fwd: fwd, collapsed: true, detail: "wait-ended"})
			o.Fail(w, r, context.Cause(r.Context()))
			c.count(Failed)
			return Failed
		}
		if res, ok := c.answerCollapsed(w, r, req, f.entry, extra, f.fwd, f.fwdStatus); ok {
			return res
		}
		if f.entry == nil || isError(f.fwdStatus) || round == maxRounds {
			// Not reusable (private, an error…): its own forward, as if
			// the other had not been there.
			return c.alone(w, r, o, req, uri, extra, fwd, lookup, false)
		}
		// Stored, but another variant (Vary, Authorization): wait with the
		// requests that want what this one wants, or find what one of them
		// stored meanwhile.
		prevFwd, prevStatus = f.fwd, f.fwdStatus
		if e, _ := c.st.lookup(uri, r, extra); e != nil {
			if res, ok := c.answerCollapsed(w, r, req, e, extra, f.fwd, f.fwdStatus); ok {
				return res
			}
		}
	}
}

// notePass remembers whether the key's response could be stored, so the
// next requests for it are collapsed or not.
func (c *Cache) notePass(fl *fill, stored *entry, err error) {
	key := fl.uri + fl.extra
	switch {
	case stored != nil:
		c.clearPass(key)
	case err == nil && !fl.noPut && fl.mode == passing && fl.reason != "":
		c.markPass(key, fl.o.Now())
	}
}

// maxRounds bounds how often a request waits on forwards that turn out to
// be for other variants before it makes its own.
const maxRounds = 4

// answerCollapsed answers r from e, the result of the forward r waited on,
// if e may answer it.
func (c *Cache) answerCollapsed(w http.ResponseWriter, r *http.Request, req directives, e *entry, extra, fwd string, fwdStatus int) (Result, bool) {
	if e == nil || !e.matches(r, extra) {
		return "", false
	}
	now := c.opts.Load().Now()
	ttl := e.t.ttl(now)
	switch {
	case ttl > 0 && !e.cc.noCache:
		// Just obtained from the function: as validated as the request
		// could want.
		e.write(w, r, now, status{fwd: fwd, fwdStatus: fwdStatus, collapsed: true, ttl: ttl, hasTTL: true}.String())
		c.count(Collapsed)
		return Collapsed, true
	case isError(fwdStatus) && ifError(e, req, -ttl):
		e.write(w, r, now, status{fwd: fwd, fwdStatus: fwdStatus, collapsed: true, ttl: ttl, hasTTL: true, detail: "stale-if-error"}.String())
		c.count(Stale)
		return Stale, true
	}
	return "", false
}

// lead makes the forward of flight f for r, answers r, and hands the result
// to the requests waiting on f.
func (c *Cache) lead(w http.ResponseWriter, r *http.Request, o Origin, f *flight, req directives, stale *entry, uri, extra, fwd string, lookup time.Duration) Result {
	stop := context.AfterFunc(r.Context(), func() { c.leave(f, context.Cause(r.Context())) })
	defer stop()
	landed := false
	defer func() {
		if !landed { // the forward panicked: let the waiters go their own way
			c.land(f, nil, fwd, 0)
		}
	}()
	fl := c.newFill(w, r, req, uri, extra, stale, fwd)
	out := stripConditions(r, f.ctx, stale)
	fl.cond = out.Header["If-None-Match"] != nil || out.Header["If-Modified-Since"] != nil
	version, err := o.Forward(fl, out, Forward{Kind: fwd, Lookup: lookup})
	e := fl.finish(version, err)
	c.notePass(fl, e, err)
	if fl.mode == validated && !sameValidator(fl.h, stale) {
		// A 304 that does not select the stored response (§4.3.4): ask
		// again, unconditionally.
		c.st.remove(stale)
		c.land(f, nil, fwd, 0)
		landed = true
		return c.alone(w, r, o, req, uri, extra, fwd, lookup, false)
	}
	c.land(f, e, fwd, fl.status)
	landed = true
	now := c.opts.Load().Now()
	switch fl.mode {
	case validated:
		e.write(w, r, now, status{fwd: fwd, fwdStatus: http.StatusNotModified, ttl: e.t.ttl(now), hasTTL: true}.String())
		c.count(Revalidated)
		return Revalidated
	case failed:
		e.write(w, r, now, status{fwd: fwd, fwdStatus: fl.status, ttl: e.t.ttl(now), hasTTL: true, detail: "stale-if-error"}.String())
		c.count(Stale)
		return Stale
	}
	c.count(Miss)
	if err != nil && fl.sent {
		panic(http.ErrAbortHandler)
	}
	return Miss
}

// refresh starts one background forward for the key to refresh stale,
// unless one is in progress. It copies what it needs of r, which ends when
// the caller's handler returns.
func (c *Cache) refresh(r *http.Request, o Origin, stale *entry, uri, extra string) {
	f := c.startBackground(uri + extra)
	if f == nil {
		return
	}
	c.refreshes.Add(1)
	base := r.Clone(f.ctx)
	base.Body, base.ContentLength = http.NoBody, 0
	out := stripConditions(base, f.ctx, stale)
	fl := c.newFill(nil, base, directives{}, uri, extra, stale, "stale")
	fl.cond = out.Header["If-None-Match"] != nil || out.Header["If-Modified-Since"] != nil
	go func() {
		defer c.wg.Done()
		landed := false
		defer func() {
			if !landed {
				c.land(f, nil, "stale", 0)
			}
		}()
		version, err := o.Forward(fl, out, Forward{Kind: "stale", Background: true})
		e := fl.finish(version, err)
		if fl.mode == validated && !sameValidator(fl.h, stale) {
			c.st.remove(stale)
			e = nil
		}
		c.land(f, e, "stale", fl.status)
		landed = true
		if err != nil {
			c.log.Debug("cache: background refresh", "path", base.URL.Path, "err", err)
		}
	}()
}

func (c *Cache) newFill(w http.ResponseWriter, r *http.Request, req directives, uri, extra string, stale *entry, fwd string) *fill {
	opts := c.opts.Load()
	fl := &fill{c: c, o: opts, client: w, r: r, req: req, uri: uri, extra: extra, stale: stale, fwd: fwd,
		h: make(http.Header), limit: c.st.entryLimit(), gen: c.st.purges.Load()}
	fl.t.requestTime = opts.Now()
	return fl
}

// stripConditions is r as the cache forwards it, with ctx: the client's
// If-None-Match and If-Modified-Since go (the cache answers them itself,
// from the response), and stale's validators, if any, take their place.
func stripConditions(r *http.Request, ctx context.Context, stale *entry) *http.Request {
	out := r.WithContext(ctx)
	_, inm := r.Header["If-None-Match"]
	_, ims := r.Header["If-Modified-Since"]
	if !inm && !ims && stale == nil {
		return out
	}
	out.Header = r.Header.Clone()
	delete(out.Header, "If-None-Match")
	delete(out.Header, "If-Modified-Since")
	if stale != nil {
		if v := stale.header["Etag"]; len(v) > 0 {
			out.Header["If-None-Match"] = v[:1:1]
		}
		if v := stale.header["Last-Modified"]; len(v) > 0 {
			out.Header["If-Modified-Since"] = v[:1:1]
		}
	}
	return out
}

// sameValidator says whether a 304's validator selects stale (§4.3.4): its
// ETag matches the stored one, or it has none and the stored Last-Modified
// is what it gives (or it gives none).
func sameValidator(h304 http.Header, stale *entry) bool {
	if etag := h304.Get("Etag"); etag != "" {
		return weakEqual(etag, stale.header.Get("Etag"))
	}
	if lm := h304.Get("Last-Modified"); lm != "" {
		return lm == stale.header.Get("Last-Modified")
	}
	return true
}

func weakEqual(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	trim := func(s string) string {
		if len(s) > 2 && s[0] == 'W' && s[1] == '/' {
			return s[2:]
		}
		return s
	}
	return trim(a) == trim(b)
}
