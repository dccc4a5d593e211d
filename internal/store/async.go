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

// asyncReliability (migration) binds an event to the version it was
// accepted for (shown; it runs on the current one), counts throttled tries
// apart from attempts and attempts a crash cut off, and keeps when its age
// is counted from (acceptance, or a retry by hand).
const asyncReliability = `
ALTER TABLE async ADD COLUMN version TEXT NOT NULL DEFAULT '';
ALTER TABLE async ADD COLUMN throttles INTEGER NOT NULL DEFAULT 0;
ALTER TABLE async ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE async ADD COLUMN age_from_ns INTEGER NOT NULL DEFAULT 0;
UPDATE async SET age_from_ns = created_ns;
CREATE INDEX async_function ON async (function, status, id);
`

// AsyncItem is one queued asynchronous invocation.
type AsyncItem struct {
	ID          int64
	Function    string
	Qualifier   string // as the caller gave it; "" for none
	Version     string // the function's version when it was accepted
	Payload     []byte
	RequestID   string // kept across retries, as Lambda does
	TraceID     string
	Attempts    int // attempts made so far (throttled and cut-off ones not counted)
	Throttles   int // tries that found no instance (throttled), retried without using an attempt
	Interrupted int // attempts cut off by a crash or a hard stop, and requeued
	NextAttempt time.Time
	Status      string
	LastError   string
	Created     time.Time
	Updated     time.Time
	// AgeFrom is when its maximum_event_age counts from: when it was
	// accepted, or retried by hand.
	AgeFrom time.Time
}

const asyncColumns = `id, function, qualifier, payload, request_id, trace_id, attempts, next_attempt_ns,
	status, last_error, created_ns, updated_ns, version, throttles, interrupted, age_from_ns`

func scanAsync(sc interface{ Scan(...any) error }) (AsyncItem, error) {
	var it AsyncItem
	var next, created, updated, ageFrom int64
	err := sc.Scan(&it.ID, &it.Function, &it.Qualifier, &it.Payload, &it.RequestID, &it.TraceID, &it.Attempts,
		&next, &it.Status, &it.LastError, &created, &updated, &it.Version, &it.Throttles, &it.Interrupted, &ageFrom)
	it.NextAttempt, it.Created, it.Updated = time.Unix(0, next), time.Unix(0, created), time.Unix(0, updated)
	it.AgeFrom = time.Unix(0, ageFrom)
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
	err := s.db.QueryRowContext(ctx, `INSERT INTO async (function, qualifier, version, payload, request_id, trace_id, attempts,
		next_attempt_ns, status, last_error, created_ns, updated_ns, age_from_ns) VALUES (?,?,?,?,?,?,0,?,?,'',?,?,?) RETURNING id`,
		it.Function, it.Qualifier, it.Version, it.Payload, it.RequestID, it.TraceID, it.NextAttempt.UnixNano(), AsyncQueued,
		now.UnixNano(), now.UnixNano(), now.UnixNano()).Scan(&id)
	if err != nil {
		s.syncWriteFailed(ctx, err)
		return 0, fmt.Errorf("store: enqueueing async invocation of %s: %w", it.Function, err)
	}
	s.wrote()
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

// Completion is how a running attempt ended.
type Completion struct {
	OK    bool
	Error string // why it failed
	// RetryAt queues it again for then; zero with OK false means failed
	// for good.
	RetryAt time.Time
	// Throttled: it found no instance to run on; the try does not count
	// as an attempt (Lambda retries throttles for up to 6 hours).
	Throttled bool
}

// Complete ends the running attempt of invocation id as c says.
func (s *Store) Complete(ctx context.Context, id int64, c Completion) error {
	status, next := AsyncSucceeded, int64(0)
	switch {
	case c.OK:
	case !c.RetryAt.IsZero():
		status, next = AsyncQueued, c.RetryAt.UnixNano()
	default:
		status = AsyncFailed
	}
	throttled := 0
	if c.Throttled {
		throttled = 1
	}
	res, err := s.db.ExecContext(ctx, `UPDATE async SET status = ?, last_error = ?, updated_ns = ?,
		next_attempt_ns = CASE WHEN ? = 0 THEN next_attempt_ns ELSE ? END,
		attempts = attempts - ?, throttles = throttles + ?
		WHERE id = ? AND status = ?`, status, c.Error, time.Now().UnixNano(), next, next, throttled, throttled, id, AsyncRunning)
	if err != nil {
		s.syncWriteFailed(ctx, err)
		return fmt.Errorf("store: completing async invocation %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: async invocation %d is not running: %w", id, ErrNotFound)
	}
	return nil
}

// RequeueRunning puts invocations left running (by a crash or a hard stop)
// back in the queue, due now, and says how many there were. The attempt
// cut off does not count (it may have run: delivery is at least once), but
// is counted as interrupted. Call it before any worker claims.
func (s *Store) RequeueRunning(ctx context.Context) (int, error) {
	now := time.Now().UnixNano()
	res, err := s.db.ExecContext(ctx, `UPDATE async SET status = ?, next_attempt_ns = ?, updated_ns = ?,
		attempts = MAX(attempts - 1, 0), interrupted = interrupted + 1 WHERE status = ?`,
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

// ListAsync lists a function's asynchronous invocations with the given
// status ("" for any), newest first, at most limit.
func (s *Store) ListAsync(ctx context.Context, function, status string, limit int) ([]AsyncItem, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+asyncColumns+` FROM async WHERE function = ?1 AND (?2 = '' OR status = ?2)
		ORDER BY id DESC LIMIT ?3`, function, status, limit)
	if err != nil {
		return nil, fmt.Errorf("store: listing async invocations of %s: %w", function, err)
	}
	defer rows.Close()
	var out []AsyncItem
	for rows.Next() {
		it, err := scanAsync(rows)
		if err != nil {
			return nil, fmt.Errorf("store: listing async invocations of %s: %w", function, err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing async invocations of %s: %w", function, err)
	}
	return out, nil
}

// ErrNotFailed is returned (wrapped) by RetryFailed for an event that has
// not failed for good.
var ErrNotFailed = errors.New("store: the event has not failed")

// RetryFailed queues function's failed event id again, due now, with its
// attempts and its age starting over (a retry by hand), and returns it.
func (s *Store) RetryFailed(ctx context.Context, function string, id int64) (AsyncItem, error) {
	now := time.Now().UnixNano()
	it, err := scanAsync(s.db.QueryRowContext(ctx, `UPDATE async SET status = ?, attempts = 0, throttles = 0,
		next_attempt_ns = ?, updated_ns = ?, age_from_ns = ? WHERE id = ? AND function = ? AND status = ?
		RETURNING `+asyncColumns, AsyncQueued, now, now, now, id, function, AsyncFailed))
	if err == nil {
		return it, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return AsyncItem{}, fmt.Errorf("store: retrying event %d of %s: %w", id, function, err)
	}
	var status string
	err = s.db.QueryRowContext(ctx, `SELECT status FROM async WHERE id = ? AND function = ?`, id, function).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return AsyncItem{}, fmt.Errorf("store: event %d of %s: %w", id, function, ErrNotFound)
	}
	if err != nil {
		return AsyncItem{}, fmt.Errorf("store: retrying event %d of %s: %w", id, function, err)
	}
	return AsyncItem{}, fmt.Errorf("store: event %d of %s is %s: %w", id, function, status, ErrNotFailed)
}
