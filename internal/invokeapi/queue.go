package invokeapi

import (
	"context"
	"time"

	"github.com/stokehq/stoke/internal/store"
)

// Queue is where Event invocations wait for a worker: SQLite on one node
// (*store.Store), a replicated JetStream work queue in a cluster
// (cluster.EventQueue). Enqueue returns once the event survives a crash.
// Claim takes the next due event and counts its attempt; Complete ends
// the attempt as the Completion says (succeeded, back in the queue until
// RetryAt, throttled, or failed for good).
type Queue interface {
	Enqueue(ctx context.Context, it store.AsyncItem) (int64, error)
	Claim(ctx context.Context, now time.Time) (store.AsyncItem, bool, error)
	Complete(ctx context.Context, id int64, c store.Completion) error
	RequeueRunning(ctx context.Context) (int, error)
	NextDue(ctx context.Context) (time.Time, bool, error)
}
