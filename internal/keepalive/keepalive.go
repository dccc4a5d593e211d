// Package keepalive decides, per function, how long idle instances live,
// when to start one ahead of a predicted request (pre-warm) and, under a
// node-wide memory budget, which idle instance to evict. The pool runs it on
// live traffic and `stoke simulate` on traces: the same code, told the time by
// its caller (a policy never reads the clock), so a decision depends only on
// what happened before it.
package keepalive

import (
	"fmt"
	"strings"
	"time"
)

// Policy decides for one function. Its caller (the pool under its lock, or
// the simulator) serialises the calls and passes non-decreasing times. Calls
// are cheap: they sit next to the request path.
type Policy interface {
	// Arrived: a request arrived at t while busy others were in flight.
	Arrived(t time.Time, busy int)
	// Finished: a request ended at t, leaving busy others in flight.
	Finished(t time.Time, busy int)
	// Started: an instance became ready at t after an init of d (a cold
	// start, a scale-out or a pre-warm).
	Started(t time.Time, init time.Duration)
	// Plan is what to hold from t on.
	Plan(t time.Time) Plan
	// Spec names the policy as configured ("fixed:10m", "hybrid", "adaptive").
	Spec() string
}

// Plan is a policy's decision at one instant.
type Plan struct {
	// KeepAlive: the function's last live instance, once idle, stops after
	// this long (measured from the end of its last request, or from when it
	// became ready if it never served one).
	KeepAlive time.Duration
	// ExtraKeepAlive: the same for idle instances beyond the last one (the
	// scale-out instances of a burst).
	ExtraKeepAlive time.Duration
	// Warm: live instances (starting, idle or busy) to hold now: the caller
	// starts instances up to it (a pre-warm) and does not stop idle ones that
	// it covers. keep_warm is a floor under it.
	Warm int
	// Until: the plan holds until then; the caller asks again at Until at
	// the latest (zero: until the next event).
	Until time.Time
	// NextPrewarm: when Warm is next planned to rise (zero: none planned).
	NextPrewarm time.Time
	// Value is what an idle instance of this function is worth keeping under
	// a memory budget, in Greedy-Dual's units (frequency × init seconds per
	// GB, see Budget); 0 makes eviction least-recently-used.
	Value float64
}

// Function is what a policy knows about its function before any traffic.
type Function struct {
	MemoryMB int
	// NodeMemoryMB is the mean memory size of the functions on the node
	// (0: MemoryMB): adaptive keeps a function twice that size half as long.
	NodeMemoryMB int
	// Init is the expected init duration before one is measured (0: 1 s).
	Init time.Duration
}

// Spec is a parsed keep_alive setting.
type Spec struct {
	Kind  string        // "fixed", "hybrid" or "adaptive"
	Fixed time.Duration // Kind "fixed"
}

// Kinds of policy.
const (
	KindFixed    = "fixed"
	KindHybrid   = "hybrid"
	KindAdaptive = "adaptive"
)

// DefaultSpec is the keep_alive of a function that sets neither keep_alive
// nor idle_timeout.
var DefaultSpec = Spec{Kind: KindAdaptive}

// ParseSpec reads "fixed:<duration>", "hybrid" or "adaptive".
func ParseSpec(s string) (Spec, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == KindHybrid:
		return Spec{Kind: KindHybrid}, nil
	case s == KindAdaptive:
		return Spec{Kind: KindAdaptive}, nil
	case strings.HasPrefix(s, KindFixed+":"):
		d, err := time.ParseDuration(strings.TrimPrefix(s, KindFixed+":"))
		if err != nil || d <= 0 {
			return Spec{}, fmt.Errorf("keep_alive %q: the duration after fixed: must be a positive Go duration like 10m", s)
		}
		return Spec{Kind: KindFixed, Fixed: d}, nil
	}
	return Spec{}, fmt.Errorf("keep_alive %q: allowed: fixed:<duration> (e.g. fixed:10m), hybrid, adaptive", s)
}

// String prints the spec as stoke.yaml spells it.
func (s Spec) String() string {
	if s.Kind == KindFixed {
		return KindFixed + ":" + FormatDuration(s.Fixed)
	}
	return s.Kind
}

// MarshalText writes the spec as stoke.yaml spells it (JSON, the stored
// versions).
func (s Spec) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads what MarshalText wrote.
func (s *Spec) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*s = Spec{}
		return nil
	}
	v, err := ParseSpec(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// New makes the policy a spec names, for one function.
func (s Spec) New(f Function) Policy {
	if f.Init <= 0 {
		f.Init = time.Second
	}
	if f.MemoryMB <= 0 {
		f.MemoryMB = 128
	}
	switch s.Kind {
	case KindFixed:
		return &Fixed{D: s.Fixed}
	case KindHybrid:
		return NewHybrid(HybridParams{})
	default:
		return NewAdaptive(f)
	}
}

// FormatDuration prints a duration the way stoke.yaml writes it: 10m, not
// 10m0s; 1h, not 1h0m0s. It lives here, the lowest package that prints one
// (fixed:10m); config.FormatDuration is this.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
