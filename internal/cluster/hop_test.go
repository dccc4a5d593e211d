package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/pool"
	httprt "github.com/stokehq/stoke/internal/runtime/http"
	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// helloApp is the function of these tests: a real process serving HTTP on
// $PORT.
func helloApp() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s from pid %d", r.URL.Path, os.Getpid())
	})
	_ = http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil)
}

// helloPool is a started pool of helloApp with one instance kept warm, in
// real cgroups.
func helloPool(t *testing.T) *pool.Pool { return helloPools(t, 1)[0] }

// helloPools is n such pools (one sandbox, one leak check).
func helloPools(t *testing.T, n int) []*pool.Pool {
	t.Helper()
	sandboxtest.CheckNoLeaks(t)
	sb, err := sandbox.New(slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	f := &config.Function{
		Name: "f", Runtime: "http", Command: []string{os.Args[0]}, Cwd: t.TempDir(),
		Env:    map[string]string{"STOKE_CLUSTER_APP": "1"},
		Memory: 128, Timeout: 10 * time.Second, Concurrency: 1, InitTimeout: 10 * time.Second,
		Readiness: config.Readiness{Protocol: "http", Path: "/", StatusMin: 100, StatusMax: 499},
	}
	var ps []*pool.Pool
	for range n {
		p := pool.New(pool.Options{Runtime: httprt.New(httprt.Options{Function: f, Version: "1", Sandbox: sb}), KeepWarm: 1, MaxInstances: 1})
		p.Start()
		t.Cleanup(p.Close)
		ps = append(ps, p)
	}
	return ps
}

// TestClaimedInstanceOverTheHop: n2 claims n1's idle instance (a real
// process) and runs a request on it over n1's peer listener; a claim whose
// request never comes holds the instance reserved, and it goes back to
// n1's pool by itself (reserveFor) — no node keeps it.
func TestClaimedInstanceOverTheHop(t *testing.T) {
	p := helloPool(t)
	nodes := testClusterWith(t, 2, func(c *config.Cluster) { c.ClaimTimeout = 2 * time.Second })
	n1, n2 := nodes[0], nodes[1]
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: n1.PeerHandler(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		<-served
	}()
	n1.SetPeer(ln.Addr().String())
	waitFor(t, 60*time.Second, "n2 to learn n1's peer address", func() bool { return n2.members.peer("n1") != "" })
	waitFor(t, 60*time.Second, "n1's keep_warm instance", p.Idle)
	stop := n1.Offer("f", "1", p, false)
	defer stop()

	// claim asks from n2 until n2's server knows of n1's offer.
	claim := func() *pool.Lease {
		t.Helper()
		var l *pool.Lease
		waitFor(t, 60*time.Second, "a claim from n2 to win n1's instance", func() bool {
			var err error
			l, err = n2.Claim(context.Background(), "f", "1")
			if err != nil && !errors.Is(err, ErrNoneIdle) {
				t.Fatalf("claim: %v", err)
			}
			return err == nil
		})
		return l
	}

	l := claim()
	if p.Idle() {
		t.Fatal("n1's only instance is claimed, yet its pool says idle")
	}
	w := httptest.NewRecorder()
	if err := l.Instance.Invoke(w, httptest.NewRequest("GET", "http://example/x?y=1", nil)); err != nil {
		t.Fatalf("invoke over the hop: %v", err)
	}
	l.Release()
	body, _ := io.ReadAll(w.Result().Body)
	if w.Code != 200 || w.Header().Get(HeaderNode) != "n1" || string(body) != fmt.Sprintf("hello /x from pid %d", p.Instances()[0].Pid) {
		t.Fatalf("over the hop: %d node %q: %s", w.Code, w.Header().Get(HeaderNode), body)
	}
	waitFor(t, 60*time.Second, "n1's instance idle again after the request", p.Idle)

	// Claimed, never used, never released: reserved, then given back.
	_ = claim()
	if p.Idle() || reserved(n1) != 1 {
		t.Fatalf("a claimed instance: pool idle %v, %d reservations", p.Idle(), reserved(n1))
	}
	waitFor(t, 60*time.Second, "the unused reservation to give the instance back", p.Idle)
	if r := reserved(n1); r != 0 {
		t.Fatalf("%d reservations left after the instance went back", r)
	}
}

// reserved counts the node's instances reserved for claims.
func reserved(n *Node) int {
	n.claims.mu.Lock()
	defer n.claims.mu.Unlock()
	return len(n.claims.m)
}

// claimSubChanges counts the subscribes and unsubscribes n's NATS server
// has seen: its own clients' and those its routes told it of.
func claimSubChanges(t *testing.T, n *Node) uint64 {
	t.Helper()
	st, err := n.srv.Subsz(nil)
	if err != nil {
		t.Fatal(err)
	}
	return st.NumInserts + st.NumRemoves
}

// TestWarmRequestsKeepTheOffer: sequential warm requests on the node that
// holds an idle instance leave its claim subscription alone (before, each
// request unsubscribed and subscribed again, each change sent to every
// server: 2 per request); and a node whose only instance is busy still
// never wins a claim, while its own claim reaches another node's idle
// instance.
func TestWarmRequestsKeepTheOffer(t *testing.T) {
	ps := helloPools(t, 2)
	p1, p2 := ps[0], ps[1]
	nodes := testClusterWith(t, 3, func(c *config.Cluster) { c.ClaimTimeout = 2 * time.Second })
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()
	subject := n1.claimSubject("f", "1")
	// winner probes the claim subject from n (the instance reserved is
	// given straight back) and names the node that answered.
	winner := func(n *Node) string {
		m, err := n.nc.Request(subject, nil, time.Second)
		var a claimAnswer
		if err != nil || json.Unmarshal(m.Data, &a) != nil || a.Token == "" {
			return ""
		}
		// A reservation not taken within reserveFor gives itself back.
		if l := nodes[map[string]int{"n1": 0, "n2": 1, "n3": 2}[a.Node]].claims.take(a.Token); l != nil {
			l.Release()
		}
		return a.Node
	}
	// Announced, never dialled: this test's requests run here, not over the hop.
	n1.SetPeer("127.0.0.2:1")
	n2.SetPeer("127.0.0.3:1")
	waitFor(t, 60*time.Second, "the keep_warm instances", func() bool { return p1.Idle() && p2.Idle() })
	stop2 := n2.Offer("f", "1", p2, false)
	defer stop2()
	waitFor(t, 60*time.Second, "n1 to reach n2's offer", func() bool { return winner(n1) == "n2" })
	stop1 := n1.Offer("f", "1", p1, false)
	defer stop1()
	waitFor(t, 60*time.Second, "n1 to offer", func() bool { return n1.Offered("f", "1") && p2.Idle() })

	const requests = 50
	r := n1.NewRouter("f", "1", p1)
	before := claimSubChanges(t, n3)
	for i := range requests {
		l, err := r.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if l.InstanceID != p1.Instances()[0].ID {
			t.Fatalf("request %d on n1 went to %s, not n1's idle instance", i, l.InstanceID)
		}
		w := httptest.NewRecorder()
		err = l.Instance.Invoke(w, httptest.NewRequest("GET", fmt.Sprintf("http://example/%d", i), nil))
		l.Release()
		if err != nil || w.Code != 200 {
			t.Fatalf("request %d: %v %d", i, err, w.Code)
		}
		// As between a client's requests: the instance is offered again.
		waitFor(t, 60*time.Second, "n1 to offer again", func() bool { return n1.Offered("f", "1") })
	}
	// Before: ~2 per request (90 for 50). Now none of the claim subject's;
	// the servers' own (JetStream's) make a few in the same time.
	if changed := claimSubChanges(t, n3) - before; changed > requests/2 {
		t.Fatalf("%d warm requests on n1: n3's server saw %d subscription changes, want ≤ %d", requests, changed, requests/2)
	}

	// n1's only instance busy (its subscription may linger): n1's own
	// claim wins n2's idle instance, at once.
	l, ok := p1.TryAcquire()
	if !ok {
		t.Fatal("n1's instance is not idle")
	}
	defer l.Release()
	if n1.Offered("f", "1") {
		t.Fatal("n1 says it offers f with its only instance busy")
	}
	remote, err := n1.Claim(ctx, "f", "1")
	if err != nil || !strings.HasPrefix(remote.InstanceID, "n2/") || p2.Idle() {
		t.Fatalf("n1's claim with its own instance busy: %v, want n2's instance", err)
	}
	// Hold n2's instance as its claimer would (the request's hop takes the
	// reservation): a reservation nobody takes gives itself back after
	// reserveFor, and n3's claim below waits ClaimTimeout (as long), so
	// under load the instance could be free again and won by n3.
	held := n2.claims.take(remote.Instance.(*remoteInstance).a.Token)
	if held == nil { // reserveFor passed already (a loaded machine): hold it directly
		var ok bool
		if held, ok = p2.TryAcquire(); !ok {
			t.Fatal("n2's instance is neither reserved for n1 nor idle")
		}
	}
	defer held.Release()
	// Every instance busy: a claim from n3 wins none.
	if got, err := n3.Claim(ctx, "f", "1"); err == nil {
		t.Fatalf("claim with every instance busy won %s", got.InstanceID)
	}
}
