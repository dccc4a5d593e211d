package cache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// gate is a function that blocks each invocation until released, and says
// when one has started.
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{entered: make(chan struct{}, 100), release: make(chan struct{})} }

func (g *gate) handler(cc string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g.entered <- struct{}{}
		select {
		case <-g.release:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Cache-Control", cc)
		w.Header().Set("Vary", "Accept-Language")
		fmt.Fprintf(w, "lang=%s", r.Header.Get("Accept-Language"))
	}
}

// refs is how many requests wait on the flight for key.
func refs(c *Cache, key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.flights[key]; f != nil {
		return f.refs
	}
	return 0
}

type answer struct {
	w   *httptest.ResponseRecorder
	res Result
}

// serveAsync sends one GET from its own goroutine, with ctx.
func serveAsync(e *env, o *origin, ctx context.Context, wg *sync.WaitGroup, out *answer, header ...string) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/c", nil)
		for _, h := range header {
			k, v, _ := strings.Cut(h, ":")
			r.Header.Set(k, strings.TrimSpace(v))
		}
		out.w = httptest.NewRecorder()
		out.res = e.c.Serve(out.w, r, o)
	}()
}

func key(path string) string {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	return uriKey(r)
}

func TestCollapsingMakesOneInvocation(t *testing.T) {
	const n = 20
	e := newEnv(t, Options{})
	g := newGate()
	o := newOrigin(g.handler("max-age=60"))
	var wg sync.WaitGroup
	answers := make([]answer, n)
	for i := range answers {
		serveAsync(e, o, context.Background(), &wg, &answers[i], "Accept-Language: en")
	}
	<-g.entered
	waitFor(t, "every request to join the flight", func() bool { return refs(e.c, key("/c")) == n })
	close(g.release)
	wg.Wait()
	wantCalls(t, o, 1)
	var collapsed int
	for _, a := range answers {
		if a.w.Code != 200 || a.w.Body.String() != "lang=en" {
			t.Fatalf("answer %d %q", a.w.Code, a.w.Body)
		}
		if a.res == Collapsed {
			collapsed++
			if got := a.w.Header().Get("Cache-Status"); got != "stoke; fwd=uri-miss; fwd-status=200; collapsed; ttl=60" {
				t.Fatalf("collapsed Cache-Status %q", got)
			}
		}
	}
	if collapsed != n-1 {
		t.Fatalf("%d collapsed, want %d", collapsed, n-1)
	}
	if s := e.c.Stats(); s.Requests[Collapsed] != n-1 || s.Requests[Miss] != 1 {
		t.Fatalf("stats %+v", s.Requests)
	}
}

func TestCollapsedOnlyWhereReusable(t *testing.T) {
	for _, tc := range []struct {
		name, cc string
		langs    []string
		calls    int64
	}{
		// A private answer is not given to the waiters: each asks on its own.
		{"private", "private, max-age=60", []string{"en", "en", "en"}, 3},
		// Another Vary value is another response.
		{"vary", "max-age=60", []string{"en", "fr", "fr"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			g := newGate()
			o := newOrigin(g.handler(tc.cc))
			var wg sync.WaitGroup
			answers := make([]answer, len(tc.langs))
			serveAsync(e, o, context.Background(), &wg, &answers[0], "Accept-Language: "+tc.langs[0])
			<-g.entered
			for i := 1; i < len(tc.langs); i++ {
				serveAsync(e, o, context.Background(), &wg, &answers[i], "Accept-Language: "+tc.langs[i])
			}
			waitFor(t, "the waiters to join", func() bool { return refs(e.c, key("/c")) == len(tc.langs) })
			close(g.release)
			wg.Wait()
			wantCalls(t, o, tc.calls)
			for i, a := range answers {
				if a.w.Body.String() != "lang="+tc.langs[i] {
					t.Fatalf("request %d (%s) got %q", i, tc.langs[i], a.w.Body)
				}
			}
		})
	}
}

func TestCollapsedWaitIsBoundedByTheRequestsDeadline(t *testing.T) {
	e := newEnv(t, Options{})
	g := newGate()
	o := newOrigin(g.handler("max-age=60"))
	var wg sync.WaitGroup
	var leader, follower answer
	serveAsync(e, o, context.Background(), &wg, &leader)
	<-g.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	serveAsync(e, o, ctx, &wg, &follower)
	waitFor(t, "the follower to give up", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return len(o.failures) == 1
	})
	close(g.release)
	wg.Wait()
	if follower.w.Code != http.StatusGatewayTimeout || follower.res != Failed {
		t.Fatalf("follower: %d %s", follower.w.Code, follower.res)
	}
	if !errors.Is(o.failures[0], context.DeadlineExceeded) {
		t.Fatalf("Fail got %v", o.failures[0])
	}
	if leader.w.Code != 200 || leader.res != Miss {
		t.Fatalf("leader: %d %s", leader.w.Code, leader.res)
	}
}

func TestForwardOutlivesTheLeaderForTheOthers(t *testing.T) {
	e := newEnv(t, Options{})
	g := newGate()
	o := newOrigin(g.handler("max-age=60"))
	var wg sync.WaitGroup
	var leader, follower answer
	lctx, lcancel := context.WithCancel(context.Background())
	serveAsync(e, o, lctx, &wg, &leader)
	<-g.entered
	serveAsync(e, o, context.Background(), &wg, &follower)
	waitFor(t, "the follower to join", func() bool { return refs(e.c, key("/c")) == 2 })
	lcancel() // the first client goes away
	waitFor(t, "the leader to leave", func() bool { return refs(e.c, key("/c")) == 1 })
	close(g.release)
	wg.Wait()
	wantCalls(t, o, 1)
	if follower.res != Collapsed || follower.w.Body.String() != "lang=" {
		t.Fatalf("follower: %s %q", follower.res, follower.w.Body)
	}
	wantStatus(t, e.get(o, "/c"), 200, "stoke; hit; ttl=60")
}

func TestForwardStopsWhenEveryoneLeft(t *testing.T) {
	e := newEnv(t, Options{})
	g := newGate()
	cancelled := make(chan struct{})
	o := newOrigin(func(w http.ResponseWriter, r *http.Request) {
		g.entered <- struct{}{}
		<-r.Context().Done()
		close(cancelled)
	})
	var wg sync.WaitGroup
	var a, b answer
	ctxA, cancelA := context.WithCancel(context.Background())
	ctxB, cancelB := context.WithCancel(context.Background())
	serveAsync(e, o, ctxA, &wg, &a)
	<-g.entered
	serveAsync(e, o, ctxB, &wg, &b)
	waitFor(t, "both to wait", func() bool { return refs(e.c, key("/c")) == 2 })
	cancelA()
	cancelB()
	<-cancelled // the forward's context ended: the function is told
	wg.Wait()
	wantCalls(t, o, 1)
}

// The forward is cancelled with the cause of the last request to leave, so
// the origin can tell a deadline (the gateway's 504) from a client that
// went away (499).
func TestForwardCancelledWithTheLastCause(t *testing.T) {
	e := newEnv(t, Options{})
	g := newGate()
	cause := make(chan error, 1)
	o := newOrigin(func(w http.ResponseWriter, r *http.Request) {
		g.entered <- struct{}{}
		<-r.Context().Done()
		cause <- context.Cause(r.Context())
	})
	var wg sync.WaitGroup
	var a answer
	timedOut := errors.New("the request's deadline")
	ctx, cancel := context.WithCancelCause(context.Background())
	serveAsync(e, o, ctx, &wg, &a)
	<-g.entered
	cancel(timedOut)
	if got := <-cause; got != timedOut {
		t.Errorf("the forward ended with %v, want the leaving request's %v", got, timedOut)
	}
	wg.Wait()
}

// A request arriving while a background refresh is in flight waits for it
// rather than invoking the function again.
func TestMissJoinsTheBackgroundRefresh(t *testing.T) {
	e := newEnv(t, Options{})
	g := newGate()
	first := true
	var mu sync.Mutex
	o := newOrigin(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		f := first
		first = false
		mu.Unlock()
		if !f {
			g.handler("max-age=10, stale-while-revalidate=60")(w, r)
			return
		}
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
		w.Header().Set("Vary", "Accept-Language")
		w.Write([]byte("old"))
	})
	e.get(o, "/c")
	e.ck.advance(20 * time.Second)
	if w := e.get(o, "/c"); w.Body.String() != "old" {
		t.Fatalf("stale answer %q", w.Body)
	}
	<-g.entered
	var wg sync.WaitGroup
	var a answer
	serveAsync(e, o, context.Background(), &wg, &a, "Cache-Control: no-cache")
	waitFor(t, "the request to join the refresh", func() bool { return refs(e.c, key("/c")) == 2 })
	close(g.release)
	wg.Wait()
	wantCalls(t, o, 2)
	if a.res != Collapsed || a.w.Body.String() != "lang=" {
		t.Fatalf("%s %q", a.res, a.w.Body)
	}
}

// A purge while a forward is in flight is not undone by its response: a
// 304 does not bring the purged body back, and a 200 fetched before the
// purge is not stored after it.
func TestPurgeDuringForwardIsNotUndone(t *testing.T) {
	for _, status := range []int{http.StatusNotModified, http.StatusOK} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			e := newEnv(t, Options{})
			g := newGate()
			var mu sync.Mutex
			blocking := false
			o := newOrigin(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				b := blocking
				mu.Unlock()
				if b {
					g.entered <- struct{}{}
					<-g.release
				}
				w.Header().Set("Cache-Control", "max-age=10")
				w.Header().Set("Etag", `"1"`)
				if r.Header.Get("If-None-Match") != "" {
					w.WriteHeader(status)
				}
				w.Write([]byte("old"))
			})
			e.get(o, "/c")
			e.ck.advance(20 * time.Second)
			mu.Lock()
			blocking = true
			mu.Unlock()
			var wg sync.WaitGroup
			var a answer
			serveAsync(e, o, context.Background(), &wg, &a)
			<-g.entered
			e.c.Purge(Purge{Path: "/c"})
			close(g.release)
			wg.Wait()
			if a.w.Body.String() != "old" {
				t.Fatalf("the request got %q", a.w.Body)
			}
			if _, n := e.c.st.usage(); n != 0 {
				t.Fatalf("%d entries after the purge", n)
			}
		})
	}
}

// Once a key's response could not be stored, requests for it are not made
// to wait for each other (they would only be forwarded one after another);
// a storable response ends that.
func TestUncacheableKeysAreNotCollapsed(t *testing.T) {
	const n = 5
	e := newEnv(t, Options{})
	var mu sync.Mutex
	cc, blocking := "private", false
	entered, release := make(chan struct{}, n), make(chan struct{})
	o := newOrigin(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		c, b := cc, blocking
		mu.Unlock()
		if b {
			entered <- struct{}{}
			<-release
		}
		w.Header().Set("Cache-Control", c)
	})
	set := func(c string, b bool) { mu.Lock(); cc, blocking = c, b; mu.Unlock() }
	burst := func() *sync.WaitGroup {
		var wg sync.WaitGroup
		for range n {
			serveAsync(e, o, context.Background(), &wg, &answer{})
		}
		return &wg
	}

	e.get(o, "/c") // private: marks the key
	set("private", true)
	wg := burst()
	for range n {
		<-entered // all n reach the function at once: none waits on another
	}
	close(release)
	wg.Wait()
	wantCalls(t, o, 1+n)

	set("max-age=60", false)
	e.get(o, "/c") // storable again
	e.c.Purge(Purge{All: true})
	release = make(chan struct{})
	set("max-age=60", true)
	wg = burst()
	<-entered
	waitFor(t, "the others to wait on the first", func() bool { return e.c.Stats().Waiting == n-1 })
	close(release)
	wg.Wait()
	wantCalls(t, o, 1+n+1+1)
}
