package cache

import "testing"

// A cluster's view of a function's cache is the sum of its nodes' caches,
// the hit ratio recomputed from the summed counts (not averaged).
func TestStatsAdd(t *testing.T) {
	var sum Stats
	n1 := Stats{Requests: map[Result]int64{Hit: 3, Miss: 1, Bypass: 5}, Entries: 2, Bytes: 100, MaxBytes: 1 << 20, Evictions: 1, Refreshes: 1}
	n1.ratio()
	n2 := Stats{Requests: map[Result]int64{Miss: 4, Collapsed: 2}, Entries: 1, Bytes: 50, MaxBytes: 1 << 20, Waiting: 1}
	n2.ratio()
	sum.Add(n1)
	sum.Add(n2)
	if sum.Requests[Hit] != 3 || sum.Requests[Miss] != 5 || sum.Requests[Collapsed] != 2 || sum.Requests[Bypass] != 5 ||
		sum.Entries != 3 || sum.Bytes != 150 || sum.MaxBytes != 2<<20 || sum.Evictions != 1 || sum.Refreshes != 1 || sum.Waiting != 1 {
		t.Fatalf("sum %+v", sum)
	}
	// 5 answered (3 hits, 2 collapsed) of 10 lookups (bypasses are not
	// lookups); the mean of the nodes' ratios (0.75, 0.33) would be 0.54.
	if sum.HitRatio != 0.5 {
		t.Fatalf("hit ratio %v, want 0.5", sum.HitRatio)
	}
	// Adding to stats decoded from a node's answer leaves the node's map
	// its own.
	if n2.Requests[Miss] != 4 {
		t.Fatalf("n2 changed: %+v", n2)
	}
}
