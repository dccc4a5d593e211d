package keepalive

import "time"

// Adaptive is a placeholder while the simulator is built.
type Adaptive struct{ Fixed }

func NewAdaptive(f Function) *Adaptive { return &Adaptive{Fixed{D: 10 * time.Minute}} }
func (a *Adaptive) Spec() string        { return KindAdaptive }
