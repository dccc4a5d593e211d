package simulate

import (
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/cost"
	"github.com/stokehq/stoke/internal/keepalive"
	"github.com/stokehq/stoke/internal/record"
)

var r0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// replayCold replays recorded arrivals with keep_warm n under fixed:<idle>
// and counts the cold starts, as `stoke cost` does.
func replayCold(t *testing.T, arr []cost.Arrival, n int, idle time.Duration) int {
	t.Helper()
	tr := FromArrivals("f", 512, arr, r0, r0.Add(time.Hour))
	rep := Run(tr, Options{Policies: []Policy{{Name: "p", Spec: keepalive.Spec{Kind: keepalive.KindFixed, Fixed: idle}, KeepWarm: n}}})
	return rep.Policies[0].ColdStarts
}

// The replay `stoke cost` prices is the pool's model: keep_warm instances
// exist from the start, the others die after their keep-alive, a request
// waiting for an init is served by a busy instance that frees first.
func TestReplayRecordedArrivals(t *testing.T) {
	at := func(d time.Duration, cold bool) cost.Arrival {
		return cost.Arrival{Start: r0.Add(d), DurationMS: 100, InitMS: 1000, Cold: cold}
	}
	// Every 10 minutes 3 requests at once, 1 s each (longer than the
	// 800 ms init, so waiting for a busy instance does not beat a start).
	var bursts []cost.Arrival
	for b := range 6 {
		for range 3 {
			bursts = append(bursts, cost.Arrival{Start: r0.Add(time.Duration(b) * 10 * time.Minute), DurationMS: 1000, InitMS: 800, Cold: true})
		}
	}
	for n, want := range map[int]int{0: 18, 1: 12, 2: 6, 3: 0, 5: 0} {
		if c := replayCold(t, bursts, n, 5*time.Minute); c != want {
			t.Errorf("bursts, keep_warm %d: %d cold, want %d", n, c, want)
		}
	}
	var near, far []cost.Arrival
	for i := range 5 {
		near = append(near, at(time.Duration(i)*4*time.Minute, i == 0))
		far = append(far, at(time.Duration(i)*6*time.Minute, true))
	}
	if c := replayCold(t, near, 0, 5*time.Minute); c != 1 {
		t.Errorf("4 min apart: %d cold, want 1", c)
	}
	if c := replayCold(t, far, 0, 5*time.Minute); c != 5 {
		t.Errorf("6 min apart: %d cold, want 5", c)
	}
	if c := replayCold(t, far, 1, 5*time.Minute); c != 0 {
		t.Errorf("6 min apart, keep_warm 1: %d cold, want 0", c)
	}
	// Busy through its init and request (1.1 s), the first instance frees
	// before a new one is ready and serves the request at 1.05 s warm.
	busy := []cost.Arrival{at(1200*time.Millisecond, false), at(0, true), at(1050*time.Millisecond, false)}
	if c := replayCold(t, busy, 0, time.Minute); c != 1 {
		t.Errorf("busy through init: %d cold, want 1", c)
	}
	if c := replayCold(t, []cost.Arrival{at(0, true), at(50*time.Millisecond, false)}, 0, time.Minute); c != 2 {
		t.Errorf("during init: %d cold, want 2", c)
	}
	// 3 × 100 ms behind one warm instance with a 1 s init: they queue.
	if c := replayCold(t, []cost.Arrival{at(0, true), at(0, false), at(0, false)}, 1, time.Minute); c != 0 {
		t.Errorf("behind one warm instance: %d cold, want 0", c)
	}
	if tr := FromArrivals("f", 0, nil, r0, r0.Add(time.Hour)); tr.Functions[0].Invocations() != 0 || tr.Functions[0].MemoryMB != DefaultMemoryMB {
		t.Errorf("empty: %+v", tr.Functions[0])
	}
}

// Records become a trace per function, of the latest memory size and the
// mean recorded init; throttled records (no instance) are left out.
func TestFromRecords(t *testing.T) {
	recs := []record.Record{
		{Function: "b", Start: r0.Add(2 * time.Second), DurationMS: 10, MemoryMB: 256, InstanceID: "i", Cold: true, InitMS: 300},
		{Function: "a", Start: r0.Add(time.Second), DurationMS: 20, MemoryMB: 128, InstanceID: "i"},
		{Function: "b", Start: r0.Add(time.Second), DurationMS: 10, MemoryMB: 512, InstanceID: "i", Cold: true, InitMS: 100},
		{Function: "b", Start: r0.Add(3 * time.Second), ErrorType: cost.ThrottledErrorType},
		{Function: "c", Start: r0.Add(-time.Second), InstanceID: "i"},
	}
	tr := FromRecords(recs, r0, r0.Add(time.Minute))
	if len(tr.Functions) != 2 || tr.Functions[0].Name != "a" || tr.Functions[1].Name != "b" {
		t.Fatalf("functions %+v", tr.Functions)
	}
	b := tr.Functions[1]
	if b.Invocations() != 2 || b.MemoryMB != 256 || b.Init != 200*time.Millisecond || b.Arrivals[0].At != time.Second {
		t.Errorf("b: %+v", b)
	}
}
