package keepalive

import "time"

// Fixed keeps every idle instance for D after its last request, and never
// pre-warms: Lambda's and OpenWhisk's policy (about 10 minutes), and Stoke's
// idle_timeout.
type Fixed struct{ D time.Duration }

func (f *Fixed) Arrived(time.Time, int)           {}
func (f *Fixed) Finished(time.Time, int)          {}
func (f *Fixed) Started(time.Time, time.Duration) {}

// Plan keeps each idle instance for D.
func (f *Fixed) Plan(time.Time) Plan { return Plan{KeepAlive: f.D, ExtraKeepAlive: f.D} }

// Spec is "fixed:<D>".
func (f *Fixed) Spec() string { return Spec{Kind: KindFixed, Fixed: f.D}.String() }
