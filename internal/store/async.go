package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// asyncSchema is the queue of asynchronous (Event) invocations. They are
// written synchronously, unlike records: a 202 promises the event survives
// a crash.
const asyncSchema = `
CREATE TABLE async (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	function        TEXT    NOT NULL,
	qualifier       TEXT    NOT NULL,
	payload         BLOB    NOT NULL,
	request_id      TEXT    NOT NULL,
	trace_id        TEXT    NOT NULL,
	attempts        INTEGER NOT NULL,
	next_attempt_ns INTEGER NOT NULL,
	status          TEXT    NOT NULL,
	last_error      TEXT    NOT NULL,
	created_ns      INTEGER NOT NULL,
	updated_ns      INTEGER NOT NULL
);
CREATE INDEX async_due ON async (status, next_attempt_ns);
CREATE INDEX async_request ON async (request_id);
`

// Status of an asynchronous invocation.
const (
	AsyncQueued    = "queued"
	AsyncRunning   = "running"
	AsyncSucceeded = "succeeded"
	AsyncFailed    = "failed"
)

// AsyncItem is one queued asynchronous invocation.
type AsyncItem struct {
	ID          int64
	Function    string
	Qualifier   string // as the caller gave it; "" for none
	Payload     []byte
	RequestID   string // kept across retries, as Lambda does
	TraceID     string
	Attempts    int // attempts started so far
	NextAttempt time.Time
	Status      string
	LastError   string
	Created     time.Time
	Updated     time.Time
}

const asyncColumns = `id, function, qualifier, payload, request_id, trace_id, attempts, next_attempt_ns,
	status, last_error, created_ns, updated_ns`

func scanAsync(sc interface{ Scan(...any) error }) (AsyncItem, error) {
	var it AsyncItem
	var next, created, updated int64
	err := sc.Scan(&it.ID, &it.Function, &it.Qualifier, &it.Payload, &it.RequestID, &it.TraceID, &it.Attempts,
		&next, &it.Status, &it.LastError, &created, &updated)
	it.NextAttempt, it.Created, it.Updated = time.Unix(0, next), time.Unix(0, created), time.Unix(0, updated)
	return it, err
}

// Enqueue saves a new queued invocation, due at it.NextAttempt (now if
// zero), and returns its id. It returns once the row is committed.
func (s *Store) Enqueue(ctx context.Context, it AsyncItem) (int64, error) {
	now := time.Now()
	if it.NextAttempt.IsZero() {
		it.NextAttempt = now
	}
	if it.Payload == nil {
		it.Payload = []byte{} // NOT NULL
	}
	var id int64
	err := s.db.QueryRowContext(ctx, `INSERT INTO async (function, qualifier, payload, request_id, trace_id, attempts,
		next_attempt_ns, status, last_error, created_ns, updated_ns) VALUES (?,?,?,?,?,0,?,?,'',?,?) RETURNING id`,
		it.Function, it.Qualifier, it.Payload, it.RequestID, it.TraceID, it.NextAttempt.UnixNano(), AsyncQueued,
		now.UnixNano(), now.UnixNano()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store: enqueueing async invocation of %s: %w", it.Function, err)
	}
	return id, nil
}

// Claim takes the queued invocation due longest ago (due at or before now),
// marks it running and counts the attempt. ok is false when none is due.
// One statement, so two workers never claim the same row.
func (s *Store) Claim(ctx context.Context, now time.Time) (it AsyncItem, ok bool, err error) {
	row := s.db.QueryRowContext(ctx, `UPDATE async SET status = ?, attempts = attempts + 1, updated_ns = ?
		WHERE id = (SELECT id FROM async WHERE status = ? AND next_attempt_ns <= ? ORDER BY next_attempt_ns, id LIMIT 1)
		RETURNING `+asyncColumns, AsyncRunning, now.UnixNano(), AsyncQueued, now.UnixNano())
	it, err = scanAsync(row)
	if errors.Is(err, sql.ErrNoRows) {
		return AsyncItem{}, false, nil
	}
	if err != nil {
		return AsyncItem{}, false, fmt.Errorf("store: claiming async invocation: %w", err)
	}
	return it, true, nil
}

// Complete ends the running attempt of invocation id: succeeded if ok;
// otherwise queued again for retryAt, or failed when retryAt is zero.
func (s *Store) Complete(ctx context.Context, id int64, ok bool, errText string, retryAt time.Time) error {
	status, next := AsyncSucceeded, int64(0)
	switch {
	case ok:
	case !retryAt.IsZero():
		status, next = AsyncQueued, retryAt.UnixNano()
	default:
		status = AsyncFailed
	}
	res, err := s.db.ExecContext(ctx, `UPDATE async SET status = ?, last_error = ?, updated_ns = ?,
		next_attempt_ns = CASE WHEN ? = 0 THEN next_attempt_ns ELSE ? END
		WHERE id = ? AND status = ?`, status, errText, time.Now().UnixNano(), next, next, id, AsyncRunning)
	if err != nil {
		return fmt.Errorf("store: completing async invocation %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: async invocation %d is not running: %w", id, ErrNotFound)
	}
	return nil
}

// RequeueRunning puts invocations left running (by a crash or a hard stop)
// back in the queue, due now, and says how many there were. Call it before
// any worker claims.
func (s *Store) RequeueRunning(ctx context.Context) (int, error) {
	now := time.Now().UnixNano()
	res, err := s.db.ExecContext(ctx, `UPDATE async SET status = ?, next_attempt_ns = ?, updated_ns = ? WHERE status = ?`,
		AsyncQueued, now, now, AsyncRunning)
	if err != nil {
		return 0, fmt.Errorf("store: requeueing running async invocations: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// NextDue is when the earliest queued invocation is due; ok is false when
// the queue is empty.
func (s *Store) NextDue(ctx context.Context) (due time.Time, ok bool, err error) {
	var ns sql.NullInt64
	err = s.db.QueryRowContext(ctx, `SELECT MIN(next_attempt_ns) FROM async WHERE status = ?`, AsyncQueued).Scan(&ns)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("store: reading next due async invocation: %w", err)
	}
	if !ns.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, ns.Int64), true, nil
}

// AsyncByRequest returns the asynchronous invocation with this request id,
// or ErrNotFound.
func (s *Store) AsyncByRequest(ctx context.Context, requestID string) (AsyncItem, error) {
	it, err := scanAsync(s.db.QueryRowContext(ctx, `SELECT `+asyncColumns+` FROM async WHERE request_id = ?
		ORDER BY id DESC LIMIT 1`, requestID))
	if errors.Is(err, sql.ErrNoRows) {
		return AsyncItem{}, fmt.Errorf("store: async invocation %s: %w", requestID, ErrNotFound)
	}
	if err != nil {
		return AsyncItem{}, fmt.Errorf("store: reading async invocation %s: %w", requestID, err)
	}
	return it, nil
}

// PruneAsync deletes finished (succeeded or failed) invocations last
// updated before before, so the queue table stays bounded.
func (s *Store) PruneAsync(ctx context.Context, before time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM async WHERE status IN (?, ?) AND updated_ns < ?`,
		AsyncSucceeded, AsyncFailed, before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("store: pruning async invocations: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
