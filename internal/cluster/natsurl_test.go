package cluster

import (
	"context"
	"slices"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/stokehq/stoke/internal/config"
)

// TestNATSURL joins two nodes through an existing JetStream NATS server
// (cluster.nats_url) instead of embedding one: they see each other and
// share max_instances as embedded nodes do.
func TestNATSURL(t *testing.T) {
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.2", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	// Registered first, so it runs after the nodes' own cleanups.
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("the NATS server did not start")
	}
	var nodes []*Node
	for _, name := range []string{"a", "b"} {
		c := &config.Cluster{Name: "ext", Node: name, NATSURL: s.ClientURL(), Secret: testSecret, Replicas: 1}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		n, err := Start(ctx, Options{Config: c, DataDir: t.TempDir(), Heartbeat: 200 * time.Millisecond})
		cancel()
		if err != nil {
			t.Fatalf("node %s through %s: %v", name, s.ClientURL(), err)
		}
		t.Cleanup(n.Close)
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		waitFor(t, 60*time.Second, n.Name()+" to see both nodes", func() bool { return slices.Equal(n.Alive(), []string{"a", "b"}) })
	}
	if s.NumRoutes() != 0 || s.NumClients() < 2 {
		t.Errorf("the nodes are not plain clients of the server: %d routes, %d clients", s.NumRoutes(), s.NumClients())
	}

	ctx := context.Background()
	la, lb := nodes[0].NewLimit("f", "1", 1), nodes[1].NewLimit("f", "1", 1)
	la.Start(func() {})
	lb.Start(func() {})
	defer la.Close()
	defer lb.Close()
	if !la.Take(ctx) {
		t.Fatal("a: no room for the first instance")
	}
	if lb.Take(ctx) {
		t.Fatal("b took a second instance: max_instances 1 did not hold through nats_url")
	}
	la.Give()
	waitFor(t, 60*time.Second, "b to get the room a gave back", func() bool { return lb.Take(ctx) })
}
