package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// transientFor is how long an operation is retried while JetStream
// answers "temporarily unavailable" or times out: a leader election
// (a node lost, a cluster starting) takes a few seconds.
const transientFor = 15 * time.Second

// retry runs f until it succeeds, fails for a reason retrying cannot
// change (a missing key, a lost compare-and-swap), ctx ends, or
// transientFor passes.
func retry(ctx context.Context, f func() error) error { return retryFor(ctx, transientFor, f) }

// retryFor is retry for at most d.
func retryFor(ctx context.Context, d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	delay := 50 * time.Millisecond
	for {
		err := f()
		if err == nil || permanent(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

func permanent(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyExists) ||
		errors.Is(err, jetstream.ErrObjectNotFound) || isWrongRevision(err) || errors.Is(err, context.Canceled)
}
