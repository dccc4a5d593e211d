package store

import (
	"context"
	"fmt"
	"time"
)

// A cluster's Event queue is JetStream's (internal/cluster): this table
// then only keeps the outcome of each event a node ran to its end, so
// `stoke events` and a retry by hand work as on one node.

// KeepAsync stores it as it ended (succeeded or failed, with its
// attempts, error and payload) and returns its id.
func (s *Store) KeepAsync(ctx context.Context, it AsyncItem) (int64, error) {
	now := time.Now()
	if it.Payload == nil {
		it.Payload = []byte{}
	}
	var id int64
	err := s.db.QueryRowContext(ctx, `INSERT INTO async (function, qualifier, version, payload, request_id, trace_id, attempts,
		next_attempt_ns, status, last_error, created_ns, updated_ns, age_from_ns, throttles, interrupted)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id`,
		it.Function, it.Qualifier, it.Version, it.Payload, it.RequestID, it.TraceID, it.Attempts, it.NextAttempt.UnixNano(),
		it.Status, it.LastError, it.Created.UnixNano(), now.UnixNano(), it.AgeFrom.UnixNano(), it.Throttles, it.Interrupted).Scan(&id)
	if err != nil {
		s.syncWriteFailed(ctx, err)
		return 0, fmt.Errorf("store: keeping the outcome of event %s: %w", it.RequestID, err)
	}
	s.wrote()
	return id, nil
}

// ForgetAsync deletes event id (queued again in a cluster's queue).
func (s *Store) ForgetAsync(ctx context.Context, id int64) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM async WHERE id = ?`, id); err != nil {
		return fmt.Errorf("store: forgetting event %d: %w", id, err)
	}
	return nil
}
