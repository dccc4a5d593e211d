package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// TestMain fails the package if any goroutine outlives its tests: every
// node closed must have stopped its watchers, heartbeats, claims and the
// embedded NATS server. The test binary doubles as the function's app of
// the tests that run instances (hop_test.go).
func TestMain(m *testing.M) {
	sandbox.MaybeRunStub()
	if os.Getenv("STOKE_CLUSTER_APP") == "1" {
		helloApp()
		return
	}
	sandboxtest.InOwnMountNamespace()
	// The sandbox's spawner thread (sandbox/stub.go) lives as long as the
	// process, by design: stubs die with it.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/stokehq/stoke/internal/sandbox.init.func3.1"))
}

const testSecret = "0123456789abcdef0123456789abcdef-test"

// freePort finds a free port on host.
func freePort(t *testing.T, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testCluster starts n real embedded nodes on 127.0.0.2, .3, …, routed to
// each other, and closes them at the end of the test.
func testCluster(t *testing.T, n int) []*Node {
	t.Helper()
	return testClusterWith(t, n, nil)
}

// testClusterWith is testCluster with each node's config changed by
// tweak (when not nil) before the node starts.
func testClusterWith(t *testing.T, n int, tweak func(*config.Cluster)) []*Node {
	t.Helper()
	var cfgs []*config.Cluster
	var routes []string
	for i := range n {
		host := fmt.Sprintf("127.0.0.%d", i+2)
		listen := fmt.Sprintf("%s:%d", host, freePort(t, host))
		routes = append(routes, "nats://"+listen)
		cfgs = append(cfgs, &config.Cluster{Name: "test", Node: fmt.Sprintf("n%d", i+1), Listen: listen, Advertise: host, Secret: testSecret})
	}
	nodes := make([]*Node, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, c := range cfgs {
		c.Routes = routes
		c.Replicas = config.DefaultReplicas(c)
		if tweak != nil {
			tweak(c)
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			nodes[i], errs[i] = Start(ctx, Options{Config: c, DataDir: t.TempDir(), Heartbeat: 200 * time.Millisecond})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
	t.Cleanup(func() {
		for _, nd := range nodes {
			if nd != nil {
				nd.Close()
			}
		}
	})
	return nodes
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMembership(t *testing.T) {
	nodes := testCluster(t, 3)
	all := []string{"n1", "n2", "n3"}
	for _, nd := range nodes {
		waitFor(t, 60*time.Second, nd.Name()+" to see all nodes", func() bool { return slices.Equal(nd.Alive(), all) })
	}
	closing := time.Now()
	nodes[2].Close()
	t.Logf("n3 closed in %s", time.Since(closing).Round(time.Millisecond))
	for _, nd := range nodes[:2] {
		// Heartbeats go over core NATS: while JetStream elects new
		// leaders for what n3 led, n1 and n2 keep hearing each other.
		var alive []string
		waitFor(t, 60*time.Second, nd.Name()+" to lose n3 and keep n1, n2", func() bool {
			alive = nd.Alive()
			if !slices.Contains(alive, "n1") || !slices.Contains(alive, "n2") {
				t.Fatalf("%s sees %v: n3's loss made it lose a live node", nd.Name(), alive)
			}
			return slices.Equal(alive, all[:2])
		})
		t.Logf("%s lost n3 %s after its close began", nd.Name(), time.Since(closing).Round(time.Millisecond))
	}
}

func TestRouteNeedsSecret(t *testing.T) {
	nodes := testCluster(t, 1)
	// A node with another secret cannot join: its route is refused, so it
	// never hears n1.
	host := "127.0.0.3"
	c := &config.Cluster{Name: "test", Node: "intruder", Listen: fmt.Sprintf("%s:%d", host, freePort(t, host)), Advertise: host,
		Secret: strings.Repeat("x", 40), Routes: []string{"nats://" + nodes[0].cfg.Listen}, Replicas: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in, err := Start(ctx, Options{Config: c, DataDir: t.TempDir(), Heartbeat: 100 * time.Millisecond})
	if err == nil {
		in.Close()
		t.Fatal("a node with the wrong secret started: its route to n1 was accepted")
	}
	if r := nodes[0].srv.NumRoutes(); r != 0 || len(nodes[0].Alive()) != 1 {
		t.Fatalf("n1 has %d routes and sees %v after an intruder tried to join", r, nodes[0].Alive())
	}
}
