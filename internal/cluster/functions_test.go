package cluster

import (
	"context"
	"fmt"
	"testing"

	"github.com/stokehq/stoke/internal/config"
)

// A node's reads of the definitions include its own writes and never go
// back: a node following the cluster acts on what it reads, and a stale
// read once took one back a version for good. JetStream's replicas may
// answer a read before they have applied the latest write, so without the
// revision floor this fails within a few dozen writes here.
func TestDefinitionsReadTheirWritesAndNeverGoBack(t *testing.T) {
	nodes := testCluster(t, 3)
	ctx := context.Background()
	const writes = 60
	var f *Definition
	last := map[*Node]int{}
	for v := 1; v <= writes; v++ {
		w := nodes[v%3]
		next := &Definition{Function: &config.Function{Name: "f"}, Version: v, Fingerprint: fmt.Sprint(v)}
		if f != nil {
			next.rev = f.rev
		}
		// A new function each time too: the list of keys is read as well.
		g := &Definition{Function: &config.Function{Name: fmt.Sprintf("g%d", v)}, Version: 1}
		for _, d := range []*Definition{next, g} {
			if err := w.commit(ctx, d); err != nil {
				t.Fatalf("write %d on %s: %v", v, w.Name(), err)
			}
		}
		defs, err := w.Definitions(ctx)
		if err != nil {
			t.Fatalf("read on %s after its write %d: %v", w.Name(), v, err)
		}
		if f = defs["f"]; f == nil || f.Version != v || len(defs) != v+1 {
			t.Fatalf("%s read f=%+v and %d definitions after writing version %d and the %dth function", w.Name(), f, len(defs), v, v)
		}
		last[w] = v
		for _, r := range nodes {
			defs, err := r.Definitions(ctx)
			if err != nil {
				t.Fatalf("read on %s after write %d: %v", r.Name(), v, err)
			}
			d := defs["f"]
			if d == nil || d.Version < last[r] || len(defs) < last[r]+1 {
				t.Fatalf("%s read f=%+v and %d definitions after reading version %d", r.Name(), d, len(defs), last[r])
			}
			last[r] = d.Version
		}
	}
}
