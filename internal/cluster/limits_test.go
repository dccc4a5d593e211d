package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLimitHoldsClusterWide takes and gives room from three real nodes at
// once: the instances holding room never exceed max.
func TestLimitHoldsClusterWide(t *testing.T) {
	nodes := testCluster(t, 3)
	for _, n := range nodes {
		waitFor(t, 60*time.Second, n.Name()+" to see all nodes", func() bool { return len(n.Alive()) == 3 })
	}
	const max = 3
	var held, peak, granted atomic.Int32
	var wg sync.WaitGroup
	for _, n := range nodes {
		l := n.NewLimit("f", "1", max)
		l.Start(func() {})
		defer l.Close()
		for range 4 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				for i := 0; i < 15 && ctx.Err() == nil; i++ {
					if !l.Take(ctx) {
						time.Sleep(time.Millisecond) // nothing to poll: a refused take is the event
						continue
					}
					granted.Add(1)
					h := held.Add(1)
					for {
						p := peak.Load()
						if h <= p || peak.CompareAndSwap(p, h) {
							break
						}
					}
					time.Sleep(2 * time.Millisecond) // the instance's life
					held.Add(-1)
					l.Give()
				}
			})
		}
	}
	wg.Wait()
	if peak.Load() > max || granted.Load() == 0 {
		t.Fatalf("peak %d instances holding room (max %d), %d granted", peak.Load(), max, granted.Load())
	}
	t.Logf("peak %d, %d granted", peak.Load(), granted.Load())
}
