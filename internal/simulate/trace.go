// Package simulate replays invocation traces through the keep-alive
// policies of package keepalive — the same code the pool runs — and reports
// cold starts and the memory kept warm while idle, per policy: `stoke
// simulate`. It reads the Azure Functions 2019 trace's CSV schemas, turns
// Stoke's own records into a trace, and generates synthetic traces shaped
// like the published statistics of Azure's.
package simulate

import (
	"time"
)

// Trace is what a simulation replays: functions and their arrivals.
type Trace struct {
	Functions []Function
	// Length is the span the trace covers (a day for an Azure day file);
	// idle memory is counted up to it.
	Length time.Duration
}

// Function is one function of a trace.
type Function struct {
	Name     string
	App      string
	MemoryMB int
	// Duration of each invocation when Arrivals has none of its own.
	Duration time.Duration
	// Init is a cold start's duration.
	Init time.Duration
	// Trigger is what the generator made the function as ("timer", "queue"
	// for queue and event triggers, "http" for the rest); empty for a
	// function read from a trace.
	Trigger string
	// PerMinute holds invocation counts per minute (Azure's form); Arrivals,
	// when set, holds exact arrivals instead (Stoke's records).
	PerMinute []int32
	Arrivals  []Arrival
	// phase places the function's arrivals within each minute (see Spread).
	phase float64
}

// Arrival is one invocation: when it arrives (from the trace's start) and
// how long it runs once it has an instance.
type Arrival struct {
	At       time.Duration
	Duration time.Duration
}

// Invocations counts the function's invocations.
func (f *Function) Invocations() int {
	if f.Arrivals != nil {
		return len(f.Arrivals)
	}
	n := 0
	for _, c := range f.PerMinute {
		n += int(c)
	}
	return n
}

// Expand returns the function's arrivals in time order. A minute's count c
// is spread evenly over the minute, at (phase+i)/c of it for i < c, with the
// function's phase in [0,1) drawn from the seed (as InVitro's "equidistant"
// mode, shifted per function so functions do not all fire on the minute). It
// is deterministic: the same seed gives the same arrivals.
func (f *Function) Expand(dst []Arrival) []Arrival {
	if f.Arrivals != nil {
		return append(dst[:0], f.Arrivals...)
	}
	dst = dst[:0]
	for m, c := range f.PerMinute {
		base := time.Duration(m) * time.Minute
		for i := 0; i < int(c); i++ {
			off := time.Duration((f.phase + float64(i)) / float64(c) * float64(time.Minute))
			dst = append(dst, Arrival{At: base + off, Duration: f.Duration})
		}
	}
	return dst
}
