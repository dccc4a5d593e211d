package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// A node's own peer address is what it set, whatever heartbeat of its own
// it hears or reads back later (the first is sent before the address is
// known); until it is set, the node's instances are not offered to others.
func TestOwnPeerAddress(t *testing.T) {
	ps := helloPools(t, 1)
	nodes := testCluster(t, 2)
	n1, n2 := nodes[0], nodes[1]
	waitFor(t, 60*time.Second, "the keep_warm instance", ps[0].Idle)
	stop := n1.Offer("f", "1", ps[0], false)
	defer stop()
	// n2 asks until n1's offer answers (its subscription has reached n2's
	// server): the answer is busy.
	var a claimAnswer
	waitFor(t, 60*time.Second, "n1's offer to answer n2", func() bool {
		m, err := n2.nc.Request(n1.claimSubject("f", "1"), nil, time.Second)
		return err == nil && json.Unmarshal(m.Data, &a) == nil
	})
	if !a.Busy || a.Token != "" {
		t.Fatalf("n1 without a peer address answered a claim with %+v, want busy", a)
	}
	if l, err := n2.Claim(context.Background(), "f", "1"); !errors.Is(err, ErrNoneIdle) {
		t.Fatalf("a claim won an instance of a node without a peer address: %v %v", l, err)
	}
	if !ps[0].Idle() {
		t.Fatal("the instance stayed reserved for a claim that was refused")
	}

	n1.SetPeer("127.0.0.2:7")
	stale, _ := json.Marshal(NodeInfo{Name: "n1", Started: time.Now()})
	n1.members.heard(&nats.Msg{Data: stale})
	if got := n1.members.peer("n1"); got != "127.0.0.2:7" {
		t.Fatalf("after hearing its own earlier heartbeat, n1's peer address is %q", got)
	}
	// Others learn it from the heartbeats.
	waitFor(t, 60*time.Second, "n2 to learn n1's peer address", func() bool { return n2.members.peer("n1") == "127.0.0.2:7" })
}
