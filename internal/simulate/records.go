package simulate

import (
	"sort"
	"time"

	"github.com/stokehq/stoke/internal/record"
)

// FromRecords turns Stoke's invocation records of [from, to) into a trace:
// one function per function name, each invocation at its recorded start for
// its recorded duration, cold starts taking the function's mean recorded
// init (DefaultInit when none was cold), instances of its recorded memory.
func FromRecords(recs []record.Record, from, to time.Time) *Trace {
	type acc struct {
		f              Function
		initSum        float64
		inits, memSeen int
	}
	by := map[string]*acc{}
	var names []string
	for _, r := range recs {
		if r.Start.Before(from) || !r.Start.Before(to) {
			continue
		}
		a, ok := by[r.Function]
		if !ok {
			a = &acc{f: Function{Name: r.Function, App: r.Function, Arrivals: []Arrival{}}}
			by[r.Function] = a
			names = append(names, r.Function)
		}
		a.f.Arrivals = append(a.f.Arrivals, Arrival{At: r.Start.Sub(from), Duration: time.Duration(r.DurationMS * float64(time.Millisecond))})
		if r.Cold && r.InitMS > 0 {
			a.initSum += r.InitMS
			a.inits++
		}
		if r.MemoryMB > 0 {
			a.f.MemoryMB = r.MemoryMB // the latest version's, records being oldest first after sorting below
		}
	}
	sort.Strings(names)
	tr := &Trace{Length: to.Sub(from)}
	for _, n := range names {
		a := by[n]
		sort.Slice(a.f.Arrivals, func(i, j int) bool { return a.f.Arrivals[i].At < a.f.Arrivals[j].At })
		a.f.Init = DefaultInit
		if a.inits > 0 {
			a.f.Init = time.Duration(a.initSum / float64(a.inits) * float64(time.Millisecond))
		}
		if a.f.MemoryMB == 0 {
			a.f.MemoryMB = DefaultMemoryMB
		}
		tr.Functions = append(tr.Functions, a.f)
	}
	return tr
}
