package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// deployLock is the key of the cluster-wide deploy lock: one deploy (or
// boot-time deploy) builds and publishes at a time, so three nodes
// booting the same file build it once.
const deployLock = "lock.deploy"

type lockValue struct {
	Node  string    `json:"node"`
	Since time.Time `json:"since"`
}

// LockDeploys takes the cluster-wide deploy lock, waiting while another
// live node holds it; a lock left by a lost node is taken over. unlock
// releases it.
func (n *Node) LockDeploys(ctx context.Context) (unlock func(), err error) {
	b, _ := json.Marshal(lockValue{Node: n.name, Since: time.Now().UTC()})
	waitingOn := ""
	var failing time.Time // since when JetStream has not answered
	for {
		rev, err := n.kvCount.Create(ctx, deployLock, b)
		if err == nil {
			return func() {
				uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				if err := n.kvCount.Delete(uctx, deployLock, jetstream.LastRevision(rev)); err != nil {
					n.log.Warn("cluster: releasing the deploy lock", "err", err)
				}
			}, nil
		}
		// Exists, or just released by its holder (a create over its
		// delete marker lost the race): look again. Unavailable while a
		// leader is elected: wait.
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongRevision(err) {
			if failing.IsZero() {
				failing = time.Now()
			} else if time.Since(failing) > transientFor {
				return nil, fmt.Errorf("cluster: taking the deploy lock (is a majority of the nodes reachable?): %w", err)
			}
		} else {
			failing = time.Time{}
		}
		e, gerr := n.kvCount.Get(ctx, deployLock)
		if gerr == nil {
			var v lockValue
			_ = json.Unmarshal(e.Value(), &v)
			if v.Node == n.name || !slices.Contains(n.Alive(), v.Node) {
				// Left by this node's previous life, or by a lost node.
				_ = n.kvCount.Delete(ctx, deployLock, jetstream.LastRevision(e.Revision()))
				continue
			}
			if v.Node != waitingOn {
				waitingOn = v.Node
				n.log.Info("waiting for another node's deploy", "holder", v.Node, "since", v.Since)
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: waiting for the deploy lock (held by %s): %w", waitingOn, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
