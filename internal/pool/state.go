package pool

import "fmt"

// State is where an instance is in its lifecycle. It is stored on the
// instance and changes only through transitionLocked, which refuses any
// change the table below does not list, as the Runtime Interface
// Emulator's sandbox state machine does:
//
//	starting → idle | busy | draining | stopped | failed
//	idle     → busy | draining | stopped
//	busy     → idle | draining | stopped
//	draining → stopped
//	stopped, failed: final
//
// busy means at least one request is in flight; draining means the pool is
// being replaced and the instance is finishing the requests it has (and
// those already queued) before it stops; failed means it never became
// ready. An instance leaves the pool's list in the same step it becomes
// stopped or failed.
type State string

const (
	StateStarting State = "starting"
	StateIdle     State = "idle"
	StateBusy     State = "busy"
	StateDraining State = "draining"
	StateStopped  State = "stopped"
	StateFailed   State = "failed"
)

var transitions = map[State][]State{
	StateStarting: {StateIdle, StateBusy, StateDraining, StateStopped, StateFailed},
	StateIdle:     {StateBusy, StateDraining, StateStopped},
	StateBusy:     {StateIdle, StateDraining, StateStopped},
	StateDraining: {StateStopped},
}

// Final says whether no transition leaves s.
func (s State) Final() bool { return s == StateStopped || s == StateFailed }

// transitionLocked moves in to state to. Staying in the same state is no
// change; any other move the table does not list is a bug in the pool: it
// is refused and logged, and the instance keeps its state.
func (p *Pool) transitionLocked(in *instance, to State) {
	if in.state == to {
		return
	}
	for _, ok := range transitions[in.state] {
		if ok == to {
			in.state = to
			return
		}
	}
	p.o.Logger.Error("pool: invalid instance state transition", "instance", in.id, "from", in.state, "to", to,
		"err", fmt.Errorf("%s → %s is not a transition", in.state, to))
}
