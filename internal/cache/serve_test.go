package cache

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestFreshHitThenStaleRevalidates(t *testing.T) {
	e := newEnv(t, Options{})
	var n atomic.Int64
	o := newOrigin(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Etag", `"v1"`)
		w.Header().Set("Date", e.ck.Now().Format(http.TimeFormat))
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fmt.Fprintf(w, "body %d", n.Add(1))
	})
	w := e.get(o, "/a")
	wantStatus(t, w, 200, "stoke; fwd=uri-miss; fwd-status=200; stored; ttl=60")
	if w.Header()["Age"] != nil || w.Body.String() != "body 1" { // from the function: no Age (age_test.go)
		t.Fatalf("first response: Age %q body %q", w.Header()["Age"], w.Body)
	}

	e.ck.advance(20 * time.Second)
	w = e.get(o, "/a")
	wantStatus(t, w, 200, "stoke; hit; ttl=40")
	if w.Header().Get("Age") != "20" || w.Body.String() != "body 1" {
		t.Fatalf("hit: Age %q body %q", w.Header().Get("Age"), w.Body)
	}
	wantCalls(t, o, 1)

	// Stale: a conditional request with the stored validator; the 304
	// refreshes the entry and the client gets the stored body.
	e.ck.advance(50 * time.Second)
	w = e.get(o, "/a")
	wantStatus(t, w, 200, "stoke; fwd=stale; fwd-status=304; ttl=60")
	wantCalls(t, o, 2)
	if got := o.last().Header.Get("If-None-Match"); got != `"v1"` {
		t.Fatalf("revalidation sent If-None-Match %q", got)
	}
	if w.Body.String() != "body 1" || w.Header().Get("Age") != "0" {
		t.Fatalf("revalidated: Age %q body %q", w.Header().Get("Age"), w.Body)
	}
	w = e.get(o, "/a")
	wantStatus(t, w, 200, "stoke; hit; ttl=60")
	wantCalls(t, o, 2)
	if s := e.c.Stats(); s.Requests[Hit] != 2 || s.Requests[Revalidated] != 1 || s.Requests[Miss] != 1 {
		t.Fatalf("stats %+v", s.Requests)
	}
}

func TestStaleWithoutValidatorIsReplaced(t *testing.T) {
	e := newEnv(t, Options{})
	var n atomic.Int64
	o := newOrigin(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10")
		fmt.Fprintf(w, "body %d", n.Add(1))
	})
	e.get(o, "/a")
	e.ck.advance(11 * time.Second)
	w := e.get(o, "/a")
	wantStatus(t, w, 200, "stoke; fwd=stale; fwd-status=200; stored; ttl=10")
	if o.last().Header.Get("If-None-Match") != "" || o.last().Header.Get("If-Modified-Since") != "" {
		t.Fatal("a conditional request without validators")
	}
	if w := e.get(o, "/a"); w.Body.String() != "body 2" {
		t.Fatalf("the new response was not stored: %q", w.Body)
	}
	wantCalls(t, o, 2)
}

func TestNotStored(t *testing.T) {
	cases := []struct {
		name   string
		header []string // response
		req    []string
		detail string
	}{
		{"no-store", []string{"Cache-Control: max-age=60, no-store"}, nil, "no-store"},
		{"private", []string{"Cache-Control: private, max-age=60"}, nil, "private"},
		{"qualified private", []string{`Cache-Control: private="X-User", max-age=60`}, nil, "private"},
		{"request no-store", []string{"Cache-Control: max-age=60"}, []string{"Cache-Control: no-store"}, ""},
		{"nothing to reuse", nil, nil, "not-fresh"},
		{"no-cache without validator", []string{"Cache-Control: no-cache"}, nil, "no-cache"},
		{"Vary: *", []string{"Cache-Control: max-age=60", "Vary: *"}, nil, "vary"},
		{"Authorization without an explicit share", []string{"Cache-Control: max-age=60"}, []string{"Authorization: Bearer a"}, "authorization"},
		{"Set-Cookie without an explicit share", []string{"Cache-Control: max-age=60", "Set-Cookie: s=1"}, nil, "set-cookie"},
		{"event stream", []string{"Cache-Control: max-age=60", "Content-Type: text/event-stream"}, nil, "streaming"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			o := newOrigin(respond(200, "x", tc.header...))
			w := e.get(o, "/a", tc.req...)
			if tc.detail != "" {
				wantStatus(t, w, 200, "stoke; fwd=uri-miss; fwd-status=200; detail="+tc.detail)
			} else if strings.Contains(w.Header().Get("Cache-Status"), "stored") {
				t.Fatalf("said stored: %q", w.Header().Get("Cache-Status"))
			}
			e.get(o, "/a", tc.req...)
			wantCalls(t, o, 2)
			if _, n := e.c.st.usage(); n != 0 {
				t.Fatalf("%d entries stored", n)
			}
		})
	}
}

func TestNoCacheRevalidatesEveryTime(t *testing.T) {
	e := newEnv(t, Options{})
	o := newOrigin(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Last-Modified", "Sun, 01 Mar 2026 10:00:00 GMT")
		if r.Header.Get("If-Modified-Since") != "" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write([]byte("page"))
	})
	wantStatus(t, e.get(o, "/p"), 200, "stoke; fwd=uri-miss; fwd-status=200; stored; ttl=0")
	for range 3 {
		w := e.get(o, "/p")
		wantStatus(t, w, 200, "stoke; fwd=stale; fwd-status=304; ttl=0")
		if w.Body.String() != "page" {
			t.Fatalf("body %q", w.Body)
		}
	}
	wantCalls(t, o, 4)
	if got := o.last().Header.Get("If-Modified-Since"); got != "Sun, 01 Mar 2026 10:00:00 GMT" {
		t.Fatalf("If-Modified-Since %q", got)
	}
}

func TestExpiresAndSMaxAge(t *testing.T) {
	e := newEnv(t, Options{})
	o := newOrigin(func(w http.ResponseWriter, r *http.Request) {
		now := e.ck.Now()
		w.Header().Set("Date", now.Format(http.TimeFormat))
		switch r.URL.Path {
		case "/expires":
			w.Header().Set("Expires", now.Add(30*time.Second).Format(http.TimeFormat))
		case "/smaxage":
			w.Header().Set("Cache-Control", "max-age=0, s-maxage=30")
		}
		w.Write([]byte(r.URL.Path))
	})
	for _, p := range []string{"/expires", "/smaxage"} {
		e.get(o, p)
	}
	e.ck.advance(29 * time.Second)
	for _, p := range []string{"/expires", "/smaxage"} {
		wantStatus(t, e.get(o, p), 200, "stoke; hit; ttl=1")
	}
	wantCalls(t, o, 2)
	e.ck.advance(2 * time.Second)
	for _, p := range []string{"/expires", "/smaxage"} {
		if w := e.get(o, p); !strings.HasPrefix(w.Header().Get("Cache-Status"), "stoke; fwd=stale") {
			t.Fatalf("%s: %q", p, w.Header().Get("Cache-Status"))
		}
	}
	wantCalls(t, o, 4)
}

func TestDefaultTTL(t *testing.T) {
	e := newEnv(t, Options{DefaultTTL: time.Minute})
	o := newOrigin(respond(200, "x"))
	wantStatus(t, e.get(o, "/a"), 200, "stoke; fwd=uri-miss; fwd-status=200; stored; ttl=60")
	wantStatus(t, e.get(o, "/a"), 200, "stoke; hit; ttl=60")
	o302 := newOrigin(respond(302, "", "Location: /b"))
	wantStatus(t, e.get(o302, "/r"), 302, "stoke; fwd=uri-miss; fwd-status=302; detail=status")
}

func TestAuthorization(t *testing.T) {
	e := newEnv(t, Options{})
	o := newOrigin(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/public" {
			w.Header().Set("Cache-Control", "public, max-age=60")
		} else {
			w.Header().Set("Cache-Control", "max-age=60")
		}
		w.Write([]byte("for " + r.Header.Get("Authorization")))
	})
	// Alice's answer is not kept unless it says public.
	e.get(o, "/me", "Authorization: Bearer alice")
	if w := e.get(o, "/me"); w.Body.String() != "for " {
		t.Fatalf("an anonymous request got %q", w.Body)
	}
	wantCalls(t, o, 2)
	// The anonymous answer, stored, is not given to Bob either: it did not
	// say it may be shared with authenticated requests.
	if w := e.get(o, "/me", "Authorization: Bearer bob"); w.Body.String() != "for Bearer bob" {
		t.Fatalf("bob got %q", w.Body)
	}
	wantCalls(t, o, 3)
	// public: stored, and reused for anyone.
	e.get(o, "/public", "Authorization: Bearer alice")
	w := e.get(o, "/public", "Authorization: Bearer bob")
	wantStatus(t, w, 200, "stoke; hit; ttl=60")
	if w.Body.String() != "for Bearer alice" {
		t.Fatalf("got %q", w.Body)
	}
	wantCalls(t, o, 4)
}

func TestSetCookie(t *testing.T) {
	e := newEnv(t, Options{})
	o := newOrigin(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "session=alice")
		if r.URL.Path == "/shared" {
			w.Header().Set("Cache-Control", "public, max-age=60")
		} else {
			w.Header().Set("Cache-Control", "max-age=60")
		}
		w.Write([]byte("page"))
	})
	e.get(o, "/page")
	e.get(o, "/page")
	wantCalls(t, o, 2)
	first := e.get(o, "/shared")
	if first.Header().Get("Set-Cookie") != "session=alice" {
		t.Fatal("the client that caused the store lost its cookie")
	}
	w := e.get(o, "/shared")
	wantStatus(t, w, 200, "stoke; hit; ttl=60")
	if v := w.Header().Values("Set-Cookie"); len(v) != 0 {
		t.Fatalf("a stored response replayed Set-Cookie %q", v)
	}
	wantCalls(t, o, 3)
}

func TestVaryNeverMixes(t *testing.T) {
	e := newEnv(t, Options{})
	o := newOrigin(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language, accept-encoding")
		fmt.Fprintf(w, "%s/%s", r.Header.Get("Accept-Language"), r.Header.Get("Accept-Encoding"))
	})
	reqs := [][]string{
		{"Accept-Language: en"},
		{"Accept-Language: fr"},
		{"Accept-Language: en", "Accept-Encoding: gzip"},
		{},                         // absent
		{"Accept-Language: "},      // present, empty: not the same as absent
		{"Accept-Language: en,fr"}, // one line
		{"Accept-Language: en", "Accept-Language: fr"}, // two lines
	}
	for _, h := range reqs {
		e.get(o, "/v", h...)
	}
	wantCalls(t, o, int64(len(reqs)))
	for _, h := range reqs {
		w := e.get(o, "/v", h...)
		wantStatus(t, w, 200, "stoke; hit; ttl=60")
		r, _ := http.NewRequest("GET", "/", nil)
		for _, l := range h {
			k, v, _ := strings.Cut(l, ":")
			r.Header.Add(k, strings.TrimSpace(v))
		}
		if want := r.Header.Get("Accept-Language") + "/" + r.Header.Get("Accept-Encoding"); w.Body.String() != want {
			t.Fatalf("request %q got %q", h, w.Body)
		}
	}
	wantCalls(t, o, int64(len(reqs)))
	w := e.get(o, "/v", "Accept-Language: de")
	if !strings.HasPrefix(w.Header().Get("Cache-Status"), "stoke; fwd=vary-miss") {
		t.Fatalf("Cache-Status %q", w.Header().Get("Cache-Status"))
	}
}

func TestKeyHeaders(t *testing.T) {
	e := newEnv(t, Options{KeyHeaders: []string{"x-tenant"}})
	o := newOrigin(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60") // no Vary: the config says
		w.Write([]byte(r.Header.Get("X-Tenant")))
	})
	e.get(o, "/t", "X-Tenant: a")
	e.get(o, "/t", "X-Tenant: b")
	if w := e.get(o, "/t", "X-Tenant: a"); w.Body.String() != "a" {
		t.Fatalf("tenant a got %q", w.Body)
	}
	if w := e.get(o, "/t", "X-Tenant: b"); w.Body.String() != "b" {
		t.Fatalf("tenant b got %q", w.Body)
	}
	wantCalls(t, o, 2)
}

func TestHead(t *testing.T) {
	e := newEnv(t, Options{})
	o := newOrigin(respond(200, "hello", "Cache-Control: max-age=60", "Content-Length: 5"))
	// A HEAD miss goes to the function and is not stored.
	w := e.do(o, http.MethodHead, "/h")
	wantStatus(t, w, 200, "stoke; fwd=uri-miss; fwd-status=200")
	e.get(o, "/h")
	wantCalls(t, o, 2)
	// A HEAD is answered from the stored GET: its fields, no body.
	w = e.do(o, http.MethodHead, "/h")
	wantStatus(t, w, 200, "stoke; hit; ttl=60")
	if w.Body.Len() != 0 || w.Header().Get("Content-Length") != "5" {
		t.Fatalf("HEAD hit: body %q Content-Length %q", w.Body, w.Header().Get("Content-Length"))
	}
	wantCalls(t, o, 2)
}

func TestClientConditionals(t *testing.T) {
	e := newEnv(t, Options{})
	o := newOrigin(respond(200, "hello", "Cache-Control: max-age=60", `Etag: W/"x1"`, "Last-Modified: Sun, 01 Mar 2026 10:00:00 GMT"))
	// On a miss the client's own conditions are answered by the cache from
	// the full response it fetched.
	w := e.get(o, "/c", `If-None-Match: "x1"`)
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Fatalf("miss with matching If-None-Match: %d %q", w.Code, w.Body)
	}
	if o.last().Header.Get("If-None-Match") != "" {
		t.Fatal("the client's If-None-Match was forwarded")
	}
	for _, tc := range []struct {
		hdr  string
		code int
	}{
		{`If-None-Match: "other", W/"x1"`, 304},
		{`If-None-Match: *`, 304},
		{`If-None-Match: "other"`, 200},
		{"If-Modified-Since: Sun, 01 Mar 2026 11:00:00 GMT", 304},
		{"If-Modified-Since: Sun, 01 Mar 2026 09:00:00 GMT", 200},
	} {
		w := e.get(o, "/c", tc.hdr)
		if w.Code != tc.code {
			t.Fatalf("%s: %d, want %d", tc.hdr, w.Code, tc.code)
		}
		if tc.code == 304 && (w.Body.Len() != 0 || w.Header().Get("Etag") != `W/"x1"` || w.Header().Get("Content-Length") != "") {
			t.Fatalf("%s: 304 with body %q, fields %v", tc.hdr, w.Body, w.Header())
		}
	}
	wantCalls(t, o, 1)
}

func TestRequestDirectives(t *testing.T) {
	e := newEnv(t, Options{})
	o := newOrigin(respond(200, "x", "Cache-Control: max-age=60", `Etag: "1"`))
	e.get(o, "/r")
	e.ck.advance(30 * time.Second)
	// no-cache and an exceeded max-age make the cache validate.
	wantStatus(t, e.get(o, "/r", "Cache-Control: no-cache"), 200, "stoke; fwd=request; fwd-status=200; stored; ttl=60")
	e.ck.advance(30 * time.Second)
	wantStatus(t, e.get(o, "/r", "Cache-Control: max-age=10"), 200, "stoke; fwd=request; fwd-status=200; stored; ttl=60")
	e.ck.advance(30 * time.Second)
	wantStatus(t, e.get(o, "/r", "Cache-Control: max-age=40"), 200, "stoke; hit; ttl=30")
	wantStatus(t, e.get(o, "/r", "Cache-Control: min-fresh=40"), 200, "stoke; fwd=request; fwd-status=200; stored; ttl=60")
	wantCalls(t, o, 4)
	// max-stale accepts a stale entry without a refresh.
	e.ck.advance(90 * time.Second)
	wantStatus(t, e.get(o, "/r", "Cache-Control: max-stale=60"), 200, "stoke; hit; ttl=-30; detail=max-stale")
	wantStatus(t, e.get(o, "/r", "Cache-Control: max-stale"), 200, "stoke; hit; ttl=-30; detail=max-stale")
	wantCalls(t, o, 4)
	// only-if-cached: a stale entry is not usable, nothing is forwarded.
	w := e.get(o, "/r", "Cache-Control: only-if-cached")
	if w.Code != http.StatusGatewayTimeout {
		t.Fatalf("only-if-cached: %d", w.Code)
	}
	wantCalls(t, o, 4)
	if w := e.get(o, "/nothing", "Cache-Control: only-if-cached"); w.Code != http.StatusGatewayTimeout {
		t.Fatalf("only-if-cached miss: %d", w.Code)
	}
	wantCalls(t, o, 4)
}

func TestStaleWhileRevalidate(t *testing.T) {
	e := newEnv(t, Options{})
	var n atomic.Int64
	o := newOrigin(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=30")
		fmt.Fprintf(w, "v%d", n.Add(1))
	})
	e.get(o, "/s")
	e.ck.advance(20 * time.Second)
	w := e.get(o, "/s")
	wantStatus(t, w, 200, "stoke; hit; ttl=-10; detail=stale-while-revalidate")
	if w.Body.String() != "v1" {
		t.Fatalf("body %q", w.Body)
	}
	// Wait without requests of our own: a stale hit read just before the
	// refresh stored v2 starts a second refresh once the first has landed
	// (v3), and a poll by request then never saw v2.
	waitFor(t, "the background refresh", func() bool {
		e.c.mu.Lock()
		inFlight := len(e.c.flights)
		e.c.mu.Unlock()
		return o.calls.Load() == 2 && inFlight == 0
	})
	if w := e.get(o, "/s"); e.c.Stats().Entries != 1 || w.Body.String() != "v2" {
		t.Fatalf("after the refresh: %q, %d entries", w.Body, e.c.Stats().Entries)
	}
	if f := o.lastForward(); !f.Background || f.Kind != "stale" {
		t.Fatalf("refresh forwarded as %+v", f)
	}
	wantCalls(t, o, 2)
	// Past the window: the request waits for the function.
	e.ck.advance(41 * time.Second)
	wantStatus(t, e.get(o, "/s"), 200, "stoke; fwd=stale; fwd-status=200; stored; ttl=10")
}

func TestStaleIfError(t *testing.T) {
	e := newEnv(t, Options{})
	var broken atomic.Bool
	o := newOrigin(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("down"))
			return
		}
		w.Header().Set("Cache-Control", "max-age=10, stale-if-error=60")
		w.Write([]byte("good"))
	})
	e.get(o, "/e")
	broken.Store(true)
	e.ck.advance(30 * time.Second)
	w := e.get(o, "/e")
	wantStatus(t, w, 200, "stoke; fwd=stale; fwd-status=502; ttl=-20; detail=stale-if-error")
	if w.Body.String() != "good" {
		t.Fatalf("body %q", w.Body)
	}
	// Past the allowance the error goes through.
	e.ck.advance(60 * time.Second)
	if w := e.get(o, "/e"); w.Code != http.StatusBadGateway {
		t.Fatalf("status %d", w.Code)
	}
	// The request may ask for it too.
	e2 := newEnv(t, Options{})
	broken.Store(false)
	o2 := newOrigin(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "max-age=10")
		w.Write([]byte("good"))
	})
	e2.get(o2, "/e")
	broken.Store(true)
	e2.ck.advance(30 * time.Second)
	if w := e2.get(o2, "/e", "Cache-Control: stale-if-error=30"); w.Code != 200 || w.Body.String() != "good" {
		t.Fatalf("request stale-if-error: %d %q", w.Code, w.Body)
	}
	if w := e2.get(o2, "/e"); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("without an allowance: %d", w.Code)
	}
}

func TestStaleIfCold(t *testing.T) {
	cases := []struct {
		name   string
		cc     string
		serves bool
	}{
		{"max-age", "max-age=10", true},
		{"must-revalidate forbids", "max-age=10, must-revalidate", false},
		{"proxy-revalidate forbids", "max-age=10, proxy-revalidate", false},
		{"s-maxage implies proxy-revalidate", "s-maxage=10", false},
		{"never fresh", "max-age=0", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{StaleIfCold: time.Minute})
			var n atomic.Int64
			o := newOrigin(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", tc.cc)
				w.Header().Set("Etag", `"e"`)
				fmt.Fprintf(w, "v%d", n.Add(1))
			})
			e.get(o, "/c")
			e.ck.advance(30 * time.Second)
			o.cold.Store(true)
			w := e.get(o, "/c")
			if !tc.serves {
				if strings.Contains(w.Header().Get("Cache-Status"), "hit") {
					t.Fatalf("served stale: %q", w.Header().Get("Cache-Status"))
				}
				return
			}
			wantStatus(t, w, 200, "stoke; hit; ttl=-20; detail=stale-if-cold")
			waitFor(t, "the background refresh", func() bool { return o.calls.Load() == 2 && e.c.Stats().Refreshes == 1 })
			// Warm again: a stale entry waits for the function.
			e.ck.advance(30 * time.Second)
			o.cold.Store(false)
			waitFor(t, "the refresh to land", func() bool {
				e.c.mu.Lock()
				defer e.c.mu.Unlock()
				return len(e.c.flights) == 0
			})
			if w := e.get(o, "/c"); !strings.HasPrefix(w.Header().Get("Cache-Status"), "stoke; fwd=stale") {
				t.Fatalf("warm: %q", w.Header().Get("Cache-Status"))
			}
			// Past stale_if_cold, even a cold function is waited for.
			e.ck.advance(200 * time.Second)
			o.cold.Store(true)
			if w := e.get(o, "/c"); !strings.HasPrefix(w.Header().Get("Cache-Status"), "stoke; fwd=stale") {
				t.Fatalf("too stale: %q", w.Header().Get("Cache-Status"))
			}
		})
	}
}

func TestUnsafeMethodInvalidates(t *testing.T) {
	e := newEnv(t, Options{})
	o := newOrigin(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		if r.Method == http.MethodPost && r.URL.Query().Get("fail") != "" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	e.get(o, "/doc")
	e.get(o, "/doc?fail=1")
	wantStatus(t, e.do(o, http.MethodPost, "/doc?fail=1"), 500, "stoke; fwd=method; fwd-status=500")
	wantStatus(t, e.get(o, "/doc?fail=1"), 200, "stoke; hit; ttl=60")
	wantStatus(t, e.do(o, http.MethodPost, "/doc"), 200, "stoke; fwd=method; fwd-status=200")
	wantStatus(t, e.get(o, "/doc"), 200, "stoke; fwd=uri-miss; fwd-status=200; stored; ttl=60")
	wantStatus(t, e.get(o, "/doc", "Range: bytes=0-1"), 200, "stoke; fwd=bypass; fwd-status=200")
}

func TestPurge(t *testing.T) {
	e := newEnv(t, Options{})
	o := newOrigin(respond(200, "x", "Cache-Control: max-age=60"))
	paths := []string{"/a", "/a?x=1", "/a/b", "/b", "/b/c"}
	fill := func() {
		for _, p := range paths {
			e.get(o, p)
		}
	}
	fill()
	if n := e.c.Purge(Purge{Path: "/a?x=1"}); n != 1 {
		t.Fatalf("purged %d", n)
	}
	if n := e.c.Purge(Purge{Path: "/a"}); n != 1 {
		t.Fatalf("purged %d by path", n)
	}
	if n := e.c.Purge(Purge{Prefix: "/b"}); n != 2 {
		t.Fatalf("purged %d by prefix", n)
	}
	if _, n := e.c.st.usage(); n != 1 {
		t.Fatalf("%d left", n)
	}
	fill()
	if n := e.c.Purge(Purge{All: true}); n != len(paths) {
		t.Fatalf("purged %d of all", n)
	}
	if b, n := e.c.st.usage(); n != 0 || b != 0 {
		t.Fatalf("after purging all: %d entries, %d bytes", n, b)
	}
}

func TestNewVersionEmptiesAndOldIsNotStored(t *testing.T) {
	e := newEnv(t, Options{})
	o := newOrigin(respond(200, "x", "Cache-Control: max-age=60"))
	e.get(o, "/a")
	e.c.SetVersion("2")
	if _, n := e.c.st.usage(); n != 0 {
		t.Fatal("a new version kept the entries")
	}
	// The old version still answers (a request in flight during the deploy).
	wantStatus(t, e.get(o, "/a"), 200, "stoke; fwd=uri-miss; fwd-status=200; stored; ttl=60")
	if _, n := e.c.st.usage(); n != 0 {
		t.Fatal("the old version's response was stored")
	}
	v := "2"
	o.version.Store(&v)
	e.get(o, "/a")
	wantStatus(t, e.get(o, "/a"), 200, "stoke; hit; ttl=60")
}

func TestMemoryBound(t *testing.T) {
	const max = 64 << 10
	e := newEnv(t, Options{MaxBytes: max})
	body := strings.Repeat("x", 1000)
	o := newOrigin(respond(200, body, "Cache-Control: max-age=600"))
	for i := range 500 {
		e.get(o, fmt.Sprintf("/%d", i))
		if b, _ := e.c.st.usage(); b > max {
			t.Fatalf("%d bytes held, budget %d", b, max)
		}
	}
	s := e.c.Stats()
	if s.Evictions == 0 || s.Entries == 0 || s.Entries > max/1000 {
		t.Fatalf("stats %+v", s)
	}
	// One response larger than an entry may be is not stored.
	n := max/maxEntryShare + 1
	big := newOrigin(respond(200, strings.Repeat("y", n), "Cache-Control: max-age=600", fmt.Sprintf("Content-Length: %d", n)))
	wantStatus(t, e.get(big, "/big"), 200, "stoke; fwd=uri-miss; fwd-status=200; detail=too-large")
	// Without a length it is found out at the end.
	chunked := newOrigin(respond(200, strings.Repeat("y", n), "Cache-Control: max-age=600"))
	e.get(chunked, "/big")
	e.get(chunked, "/big")
	wantCalls(t, chunked, 2)
	// Shrinking the budget evicts down to it.
	e.c.Configure(Options{MaxBytes: max / 4, Now: e.ck.Now})
	if b, _ := e.c.st.usage(); b > max/4 {
		t.Fatalf("%d bytes after shrinking to %d", b, max/4)
	}
}

// TestSieveKeepsWhatIsUsed: an entry hit since the hand last passed
// survives a scan of one-time requests that an LRU would let flush it.
func TestSieveKeepsWhatIsUsed(t *testing.T) {
	e := newEnv(t, Options{MaxBytes: 16 << 10})
	o := newOrigin(respond(200, strings.Repeat("x", 500), "Cache-Control: max-age=600"))
	e.get(o, "/hot")
	for i := range 200 {
		e.get(o, fmt.Sprintf("/cold/%d", i))
		if w := e.get(o, "/hot"); !strings.HasPrefix(w.Header().Get("Cache-Status"), "stoke; hit") {
			t.Fatalf("the hot entry was evicted after %d cold ones", i)
		}
	}
}

// Behind a trusted proxy the function learns the scheme and host the client
// used from X-Forwarded-*: an http→https redirect stored for an http client
// is not served to an https one.
func TestForwardedURIIsPartOfTheKey(t *testing.T) {
	e := newEnv(t, Options{})
	o := newOrigin(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		if r.Header.Get("X-Forwarded-Proto") == "http" {
			w.Header().Set("Location", "https://"+r.Header.Get("X-Forwarded-Host")+r.URL.Path)
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		w.Write([]byte("secure page"))
	})
	e.get(o, "/p", "X-Forwarded-Proto: http", "X-Forwarded-Host: example.com")
	w := e.get(o, "/p", "X-Forwarded-Proto: https", "X-Forwarded-Host: example.com")
	if w.Code != 200 || w.Body.String() != "secure page" {
		t.Fatalf("the https client got %d %q", w.Code, w.Body)
	}
	wantStatus(t, e.get(o, "/p", "X-Forwarded-Proto: http", "X-Forwarded-Host: example.com"), 301, "stoke; hit; ttl=60")
	wantStatus(t, e.get(o, "/p", "X-Forwarded-Proto: https", "X-Forwarded-Host: example.com"), 200, "stoke; hit; ttl=60")
	if n := e.c.Purge(Purge{Path: "/p"}); n != 2 {
		t.Fatalf("purged %d", n)
	}
}

// In a cluster the gateway says X-Stoke-Node (its own name) before the
// cache runs: a forward served by another node's instance names that node
// once, and a hit names the node whose cache answered, never the one
// whose instance made the stored response.
func TestNodeField(t *testing.T) {
	e := newEnv(t, Options{})
	o := newOrigin(respond(200, "x", "Cache-Control: max-age=60", "X-Stoke-Node: n1"))
	serve := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		w.Header().Set("X-Stoke-Node", "n2")
		e.c.Serve(w, httptest.NewRequest(http.MethodGet, "/p", nil), o)
		return w
	}
	if w := serve(); !slices.Equal(w.Header().Values("X-Stoke-Node"), []string{"n1"}) || !strings.Contains(w.Header().Get("Cache-Status"), "stored") {
		t.Fatalf("forwarded: X-Stoke-Node %q, Cache-Status %q", w.Header().Values("X-Stoke-Node"), w.Header().Get("Cache-Status"))
	}
	if w := serve(); !slices.Equal(w.Header().Values("X-Stoke-Node"), []string{"n2"}) || !strings.HasPrefix(w.Header().Get("Cache-Status"), "stoke; hit") {
		t.Fatalf("hit: X-Stoke-Node %q, Cache-Status %q", w.Header().Values("X-Stoke-Node"), w.Header().Get("Cache-Status"))
	}
}
