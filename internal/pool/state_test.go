package pool

import (
	"context"
	"log/slog"
	"testing"
)

// recordErrors counts the Error records logged.
type recordErrors struct{ n *int }

func (h recordErrors) Enabled(context.Context, slog.Level) bool { return true }
func (h recordErrors) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		*h.n++
	}
	return nil
}
func (h recordErrors) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordErrors) WithGroup(string) slog.Handler      { return h }

func TestTransitions(t *testing.T) {
	all := []State{StateStarting, StateIdle, StateBusy, StateDraining, StateStopped, StateFailed}
	allowed := map[[2]State]bool{}
	for from, tos := range transitions {
		for _, to := range tos {
			allowed[[2]State{from, to}] = true
		}
	}
	for _, from := range all {
		for _, to := range all {
			errs := 0
			p := New(Options{Logger: slog.New(recordErrors{&errs})})
			in := &instance{id: "i", state: from}
			p.transitionLocked(in, to)
			want := to
			if from != to && !allowed[[2]State{from, to}] {
				want = from // refused
			}
			if in.state != want || (errs > 0) != (want != to) {
				t.Errorf("%s → %s: state %s, %d errors logged", from, to, in.state, errs)
			}
		}
	}
	for _, s := range all {
		if s.Final() != (len(transitions[s]) == 0) {
			t.Errorf("%s: Final %v but %d transitions out", s, s.Final(), len(transitions[s]))
		}
	}
}
