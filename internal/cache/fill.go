package cache

import (
	"net/http"
	"strconv"
	"strings"
)

// fill is the ResponseWriter a forward writes to: it keeps a copy of the
// function's response to store, and passes it on to the client as it comes
// (client nil: a background refresh). It decides when the status arrives:
//   - a 304 to the cache's own conditional request is kept from the client,
//     who is then answered from the refreshed entry;
//   - an error (500–504) while a stale entry may stand in for it
//     (stale-if-error) is kept from the client, who gets the entry;
//   - anything else goes through, with Cache-Status (and no Age: it is
//     not an answer from the cache), or as a 304 when the client's own
//     conditions match it.
//
// Writes to a client that went away are dropped, not failed, so the
// function's answer is still read whole (and stored) for the requests
// collapsed onto it.
type fill struct {
	c      *Cache
	o      *Options
	client http.ResponseWriter
	r      *http.Request // the client's request as it came
	req    directives    // its Cache-Control
	uri    string
	extra  string
	stale  *entry // the entry being revalidated; nil on a miss
	cond   bool   // the forward carries stale's validators
	fwd    string // Cache-Status fwd
	noPut  bool   // forward only: never store (HEAD, request no-store, bypass)
	limit  int64  // the largest body stored
	gen    int64  // store.purges when the forward started

	h      http.Header // what the function writes
	status int
	mode   fillMode
	// The response as it will be stored: decided with the status.
	d          directives
	t          timing
	reason     string // why not stored; "" while storing
	body       []byte
	notMod     bool // the client gets a 304 for its own conditions: no body
	clientGone bool
	sent       bool // bytes went to the client
}

type fillMode uint8

const (
	undecided fillMode = iota
	passing            // the response goes to the client (if any)
	validated          // a 304 to the cache's conditional request
	failed             // an error stale-if-error hides
)

func (f *fill) Header() http.Header { return f.h }

func (f *fill) WriteHeader(code int) {
	if f.mode != undecided {
		return
	}
	if code < 200 {
		return // informational: the forwarders do not pass these on either
	}
	now := f.o.Now()
	f.status = code
	f.d = parseDirectives(f.h)
	f.t = newTiming(f.h, code, f.d, f.t.requestTime, now, f.o.DefaultTTL)
	switch {
	case code == http.StatusNotModified && f.cond:
		f.mode = validated
		return
	case isError(code) && f.stale != nil && ifError(f.stale, f.req, -f.stale.t.ttl(now)):
		f.mode = failed
		return
	}
	f.mode = passing
	st := status{fwd: f.fwd, fwdStatus: code}
	if f.noPut {
		f.reason = "forward-only"
	} else if f.reason = notStored(f.r, f.req, code, f.h, f.d, f.t); f.reason == "" && f.declared() > f.limit {
		f.reason = "too-large"
		st.detail = f.reason
	} else if f.reason == "" {
		st.stored, st.ttl, st.hasTTL = true, f.t.ttl(now), true
	} else {
		st.detail = f.reason
	}
	if f.client == nil {
		return
	}
	ch := f.client.Header()
	copyFields(ch, f.h)
	// No Age of the cache's: the function made this response for this
	// request (RFC 9111 §5.1), however long that took. f.t's age (which
	// counts the forward's delay, §4.2.3) is the stored copy's, for the
	// answers from it; the function's own Age, if any, passes through.
	ch.Set("Cache-Status", st.String())
	if notModified(f.r, code, f.h) {
		// The client's own If-None-Match/If-Modified-Since: answer 304 with
		// the fields a 304 carries (RFC 9110 §15.4.5).
		f.notMod = true
		for k := range ch {
			if !keepOn304(k) {
				delete(ch, k)
			}
		}
		f.sent = true
		f.client.WriteHeader(http.StatusNotModified)
		return
	}
	f.sent = true
	f.client.WriteHeader(code)
}

// declared is the response's Content-Length, -1 when it has none.
func (f *fill) declared() int64 {
	v := f.h["Content-Length"]
	if len(v) != 1 {
		return -1
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// keepOn304 says whether a field of the full response stays on a 304 made
// for the client's conditions: what §15.4.5 lists, and Stoke's own.
func keepOn304(k string) bool {
	switch k {
	case "Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Last-Modified", "Vary", "Age", "Cache-Status":
		return true
	}
	return strings.HasPrefix(k, "X-")
}

func (f *fill) Write(b []byte) (int, error) {
	if f.mode == undecided {
		f.WriteHeader(http.StatusOK)
	}
	if f.mode != passing {
		return len(b), nil
	}
	if f.reason == "" {
		if int64(len(f.body)+len(b)) > f.limit {
			f.reason, f.body = "too-large", nil
		} else {
			f.body = append(f.body, b...)
		}
	}
	if f.client != nil && !f.notMod && !f.clientGone {
		if _, err := f.client.Write(b); err != nil {
			f.clientGone = true
		}
	}
	return len(b), nil
}

// FlushError passes a flush on while the response goes through (streamed
// responses).
func (f *fill) FlushError() error {
	if f.mode != passing || f.client == nil || f.notMod || f.clientGone {
		return nil
	}
	return http.NewResponseController(f.client).Flush()
}

// Unwrap lets a ResponseController reach the client's connection
// (EnableFullDuplex while a request body is still being sent).
func (f *fill) Unwrap() http.ResponseWriter { return f.client }

// finish ends the forward: with the function version that answered and the
// forward's error, it stores what may be stored and returns the entry that
// may now answer requests for the key (nil when none).
func (f *fill) finish(version string, err error) *entry {
	if f.mode == undecided && err == nil {
		f.WriteHeader(http.StatusOK) // the function wrote nothing: an empty 200
	}
	current := version != "" && version == *f.c.version.Load()
	switch f.mode {
	case validated:
		if err != nil {
			return nil
		}
		e := f.stale.refreshed(f.h, f.t.requestTime, f.t.responseTime, f.o.DefaultTTL)
		if current && version == f.stale.version && !f.c.st.gone(f.stale) {
			// Not when the entry went meanwhile (purged, invalidated):
			// the 304 would bring its old body back.
			f.c.st.put(e, f.stale, f.r, f.gen)
		}
		return e
	case failed:
		return f.stale
	case passing:
		if f.client != nil {
			// Trailers arrive once the body ended.
			ch := f.client.Header()
			for k, v := range f.h {
				if strings.HasPrefix(k, http.TrailerPrefix) {
					ch[k] = v
				}
			}
		}
		if err != nil || f.reason != "" || !current {
			if f.stale != nil && err == nil && !f.noPut {
				// A whole new answer that may not be kept: what is stored
				// for this request is out of date.
				f.c.st.remove(f.stale)
			}
			return nil
		}
		e := f.entry(version)
		if !f.c.st.put(e, f.stale, f.r, f.gen) {
			return nil
		}
		return e
	}
	return nil
}

// entry is the stored form of the response.
func (f *fill) entry(version string) *entry {
	e := &entry{
		uri: f.uri, extra: f.extra, path: f.r.URL.Path, query: f.r.URL.RawQuery, version: version,
		status: f.status, header: storedHeader(f.h), body: f.body, cc: f.d, t: f.t,
		shared: explicitlyShared(f.d, true),
	}
	e.vary, _ = varyNames(f.h)
	if len(e.vary) > 0 {
		e.varyVals = varyKey(f.r.Header, e.vary)
	}
	e.size = entrySize(e)
	return e
}

// copyFields adds src's fields to dst as the forwarders do: values of a
// field dst already has (Stoke's X-Request-Id) are appended to, except
// X-Stoke-Node: a response from another node's instance names that node
// instead of the gateway's (as it does without a cache).
func copyFields(dst, src http.Header) {
	for k, v := range src {
		if old := dst[k]; old != nil && k != "X-Stoke-Node" {
			dst[k] = append(old, v...)
		} else {
			dst[k] = v
		}
	}
}
