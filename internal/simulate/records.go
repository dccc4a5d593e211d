package simulate

import (
	"sort"
	"time"

	"github.com/stokehq/stoke/internal/cost"
	"github.com/stokehq/stoke/internal/record"
)

// FromRecords turns Stoke's invocation records of [from, to) into a trace:
// one function per function name (FromArrivals), instances of the latest
// recorded memory size. Records that never reached an instance (throttled)
// are left out, as they never needed one.
func FromRecords(recs []record.Record, from, to time.Time) *Trace {
	by := map[string][]cost.Arrival{}
	type size struct {
		mb int
		at time.Time
	}
	mem := map[string]size{}
	var names []string
	for _, r := range recs {
		if r.Start.Before(from) || !r.Start.Before(to) || !cost.Billable(&r) {
			continue
		}
		if _, ok := by[r.Function]; !ok {
			names = append(names, r.Function)
		}
		by[r.Function] = append(by[r.Function], cost.Arrival{Start: r.Start, DurationMS: r.DurationMS, InitMS: r.InitMS, Cold: r.Cold})
		if m := mem[r.Function]; r.MemoryMB > 0 && !r.Start.Before(m.at) {
			mem[r.Function] = size{r.MemoryMB, r.Start}
		}
	}
	sort.Strings(names)
	tr := &Trace{Length: to.Sub(from)}
	for _, n := range names {
		tr.Functions = append(tr.Functions, FromArrivals(n, mem[n].mb, by[n], from, to).Functions...)
	}
	return tr
}

// FromArrivals is a trace of one function's recorded arrivals in [from,
// to): each at its recorded start for its recorded duration, a cold start
// taking the mean recorded init (DefaultInit when none was cold),
// instances of memoryMB (DefaultMemoryMB when 0). `stoke cost` replays it
// to price keep-alive policies; `stoke simulate --from-records` too.
func FromArrivals(name string, memoryMB int, arr []cost.Arrival, from, to time.Time) *Trace {
	f := Function{Name: name, App: name, MemoryMB: memoryMB, Init: DefaultInit, Arrivals: []Arrival{}}
	if f.MemoryMB <= 0 {
		f.MemoryMB = DefaultMemoryMB
	}
	var initSum float64
	inits := 0
	for _, a := range arr {
		if a.Start.Before(from) || !a.Start.Before(to) {
			continue
		}
		f.Arrivals = append(f.Arrivals, Arrival{At: a.Start.Sub(from), Duration: time.Duration(a.DurationMS * float64(time.Millisecond))})
		if a.Cold && a.InitMS > 0 {
			initSum += a.InitMS
			inits++
		}
	}
	sort.Slice(f.Arrivals, func(i, j int) bool { return f.Arrivals[i].At < f.Arrivals[j].At })
	if inits > 0 {
		f.Init = time.Duration(initSum / float64(inits) * float64(time.Millisecond))
	}
	return &Trace{Functions: []Function{f}, Length: to.Sub(from)}
}
