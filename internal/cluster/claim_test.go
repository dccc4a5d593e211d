package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stokehq/stoke/internal/config"
)

// TestClaimAnswers checks the claim's protocol against the answers another
// node can give, from a real NATS subscriber on n2 standing in for n2's
// offer (Stoke's own cannot be held busy or stuck on demand): nothing
// offered is "no idle instance" at once; busy answers are asked again,
// claimTries times in all (Stoke's own busy node stops offering as it
// answers, so each ask reaches another node), and then given up; a node that does not answer is given up after
// cluster.claim_timeout (the Router then goes to its local pool, as for
// any failed claim).
func TestClaimAnswers(t *testing.T) {
	nodes := testClusterWith(t, 2, func(c *config.Cluster) { c.ClaimTimeout = 50 * time.Millisecond })
	n1, n2 := nodes[0], nodes[1]
	ctx := context.Background()
	subject := n1.claimSubject("f", "1")

	if _, err := n1.Claim(ctx, "f", "1"); !errors.Is(err, ErrNoneIdle) {
		t.Fatalf("nothing offered: %v, want ErrNoneIdle", err)
	}

	// offer subscribes n2 to the claim subject with answer, and waits until
	// n1's server routes claims to it (probes, which answer does not see).
	var asked atomic.Int32
	offer := func(answer func(m *nats.Msg)) *nats.Subscription {
		t.Helper()
		sub, err := n2.nc.QueueSubscribe(subject, "idle", func(m *nats.Msg) {
			if string(m.Data) == "probe" {
				_ = m.Respond([]byte(`{"busy":true}`))
				return
			}
			asked.Add(1)
			answer(m)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := n2.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 60*time.Second, "n1 to route claims to n2", func() bool {
			_, err := n1.nc.Request(subject, []byte("probe"), time.Second)
			return err == nil
		})
		asked.Store(0)
		return sub
	}

	busy := offer(func(m *nats.Msg) {
		b, _ := json.Marshal(claimAnswer{Busy: true})
		_ = m.Respond(b)
	})
	if _, err := n1.Claim(ctx, "f", "1"); !errors.Is(err, ErrNoneIdle) || asked.Load() != claimTries {
		t.Fatalf("busy answers: %v after %d claims, want ErrNoneIdle after %d", err, asked.Load(), claimTries)
	}
	_ = busy.Unsubscribe()

	stuck := offer(func(*nats.Msg) {})
	defer stuck.Unsubscribe()
	_, err := n1.Claim(ctx, "f", "1")
	if err == nil || errors.Is(err, ErrNoneIdle) || !errors.Is(err, context.DeadlineExceeded) || asked.Load() != 1 {
		t.Fatalf("no answer: %v after %d claims, want a timeout after 1", err, asked.Load())
	}
}
