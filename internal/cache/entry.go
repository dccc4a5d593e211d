package cache

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stokehq/stoke/internal/runtime/httpwire"
)

// entry is one stored response. Its fields never change once stored (a
// refresh stores a new entry sharing the body), so readers need no lock;
// only the queue links and the SIEVE flag belong to the store.
type entry struct {
	uri, extra string // key: URI part, key_headers part
	vary       []string
	varyVals   string // appendValues of each vary header, in order
	path       string // r.URL.Path, for purges
	query      string
	version    string // the function version that answered

	status int
	header http.Header // as stored: no hop-by-hop fields, no Set-Cookie, Age or X-Request-Id
	body   []byte
	cc     directives
	t      timing
	// shared: the response explicitly allows a shared cache (public,
	// s-maxage or must-revalidate, RFC 9111 §3.5), so it may answer a
	// request that carries Authorization.
	shared bool

	size    int64
	visited atomic.Bool
	removed bool   // guarded by store.mu
	prev    *entry // guarded by store.mu
	next    *entry // guarded by store.mu
}

// entryOverhead approximates an entry's bookkeeping in bytes, so that many
// tiny responses are accounted for too.
const entryOverhead = 256

// matches says whether e may answer r: its key_headers part and the request
// headers its Vary names are the same (§4.1), and a request with
// Authorization gets only an explicitly shared response.
func (e *entry) matches(r *http.Request, extra string) bool {
	if e.extra != extra {
		return false
	}
	if !e.shared && r.Header["Authorization"] != nil {
		return false
	}
	if len(e.vary) == 0 {
		return e.varyVals == ""
	}
	return e.varyVals == varyKey(r.Header, e.vary)
}

func varyKey(h http.Header, names []string) string {
	var b []byte
	for _, n := range names {
		b = appendValues(b, h[n])
	}
	return string(b)
}

// storedHeader copies the fields of a response worth storing: none about
// one connection (or listed in its Connection), no Set-Cookie (the cookie
// is one client's, §3.5 rule below), no Age (recomputed) and none of
// Stoke's per-request fields. Value slices are clipped, so a later Add on a
// response header map sharing them cannot write into the stored copy.
func storedHeader(h http.Header) http.Header {
	out := make(http.Header, len(h))
	conn := h["Connection"]
	for k, v := range h {
		switch {
		case httpwire.HopByHop(k), httpwire.Listed(conn, k), strings.HasPrefix(k, http.TrailerPrefix):
			continue
		}
		switch k {
		case "Set-Cookie", "Age", "X-Request-Id", "Cache-Status", "X-Stoke-Cold", "X-Stoke-Node":
			// X-Stoke-Node: a stored answer is given by the node whose
			// cache holds it, not the one whose instance made it.
			continue
		}
		out[k] = slices.Clip(slices.Clone(v))
	}
	return out
}

func headerSize(h http.Header) int64 {
	var n int64
	for k, vv := range h {
		for _, v := range vv {
			n += int64(len(k) + len(v) + 4)
		}
	}
	return n
}

// refreshed is e updated by a 304 to a conditional request (§4.3.4): the
// 304's fields replace the stored ones, except those that describe the
// 304's own (empty) content, and freshness restarts from it.
func (e *entry) refreshed(h304 http.Header, requestTime, responseTime time.Time, defaultTTL time.Duration) *entry {
	n := &entry{
		uri: e.uri, extra: e.extra, vary: e.vary, varyVals: e.varyVals, path: e.path, query: e.query,
		version: e.version, status: e.status, body: e.body, shared: e.shared,
		header: e.header.Clone(),
	}
	for k, v := range storedHeader(h304) {
		switch k {
		case "Content-Length", "Content-Encoding", "Content-Type", "Content-Range":
			continue
		}
		n.header[k] = v
	}
	n.cc = parseDirectives(n.header)
	n.t = newTiming(n.header, n.status, n.cc, requestTime, responseTime, defaultTTL)
	n.size = entrySize(n)
	return n
}

func entrySize(e *entry) int64 {
	return int64(len(e.body)+len(e.uri)+len(e.extra)+len(e.varyVals)+len(e.path)+len(e.query)) + headerSize(e.header) + entryOverhead
}

// notModified evaluates r's If-None-Match, or else If-Modified-Since,
// against e (RFC 9110 §13.1.2, §13.1.3, §13.2.2), for a 200 to a GET or
// HEAD: true means answer 304.
func notModified(r *http.Request, status int, h http.Header) bool {
	if status != http.StatusOK || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	if inm := r.Header["If-None-Match"]; len(inm) > 0 {
		etag := h.Get("Etag")
		for _, line := range inm {
			if etagListed(line, etag) {
				return true
			}
		}
		return false
	}
	ims := r.Header.Get("If-Modified-Since")
	lm := h.Get("Last-Modified")
	if ims == "" || lm == "" {
		return false
	}
	since, err := http.ParseTime(ims)
	if err != nil {
		return false
	}
	mod, err := http.ParseTime(lm)
	return err == nil && !mod.After(since)
}

// etagListed says whether the If-None-Match field value list names etag,
// by the weak comparison (§8.8.3.2), or is "*".
func etagListed(list, etag string) bool {
	list = strings.Trim(list, " \t")
	if list == "*" {
		return true
	}
	if etag == "" {
		return false
	}
	want := strings.TrimPrefix(etag, "W/")
	for list != "" {
		list = strings.TrimLeft(list, " \t,")
		tag := strings.TrimPrefix(list, "W/")
		if !strings.HasPrefix(tag, `"`) {
			return false // malformed: no match, the full response is safe
		}
		end := strings.IndexByte(tag[1:], '"')
		if end < 0 {
			return false
		}
		if tag[:end+2] == want {
			return true
		}
		list = tag[end+2:]
	}
	return false
}

// notModifiedFields are what a 304 carries of the 200 it stands for (RFC
// 9110 §15.4.5).
var notModifiedFields = []string{"Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Last-Modified", "Vary"}

// write sends e to w for r: its fields, Age and Cache-Status, then a 304
// if r's conditions say the client has it, else the status and (not for
// HEAD) the body.
func (e *entry) write(w http.ResponseWriter, r *http.Request, now time.Time, status string) {
	h := w.Header()
	if notModified(r, e.status, e.header) {
		for _, k := range notModifiedFields {
			if v, ok := e.header[k]; ok {
				h[k] = v
			}
		}
		h.Set("Age", seconds(max(0, e.t.age(now))))
		h.Set("Cache-Status", status)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	for k, v := range e.header {
		h[k] = v
	}
	h.Set("Age", seconds(max(0, e.t.age(now))))
	h.Set("Cache-Status", status)
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead && len(e.body) > 0 {
		_, _ = w.Write(e.body)
	}
}
