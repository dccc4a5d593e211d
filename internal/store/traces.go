package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// tracesSchema keeps recent traces, one row per invocation with its spans as
// JSON (internal/trace owns the format). Rows are trimmed to the newest N by
// id: ids are never reused because rows are only ever deleted from the
// bottom, so "id <= max - N" is an index range, not a scan or a sort.
const tracesSchema = `
CREATE TABLE traces (
	id         INTEGER PRIMARY KEY,
	request_id TEXT    NOT NULL,
	trace_id   TEXT    NOT NULL,
	function   TEXT    NOT NULL,
	start_ns   INTEGER NOT NULL,
	data       BLOB    NOT NULL
);
CREATE INDEX traces_request ON traces (request_id);
CREATE INDEX traces_function ON traces (function, id);
`

// tracesPerInsert keeps an INSERT's bound values (5 a row) far below
// SQLite's limit of 32,766.
const tracesPerInsert = 128

// TraceRow is one stored trace.
type TraceRow struct {
	RequestID string
	TraceID   string
	Function  string
	Start     time.Time
	Data      []byte // the spans, as JSON
}

// PutTraces writes rows in one transaction and trims the table to the keep
// newest rows (all rows if keep ≤ 0). The caller batches: it is not for the
// request path.
func (s *Store) PutTraces(ctx context.Context, rows []TraceRow, keep int) error {
	if len(rows) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: beginning trace batch: %w", err)
	}
	defer tx.Rollback()
	// Many rows per INSERT: per statement, database/sql and the driver cost
	// more than SQLite's own work for a row.
	for len(rows) > 0 {
		n := min(len(rows), tracesPerInsert)
		q := `INSERT INTO traces (request_id, trace_id, function, start_ns, data) VALUES (?,?,?,?,?)` +
			strings.Repeat(`,(?,?,?,?,?)`, n-1)
		args := make([]any, 0, 5*n)
		for _, r := range rows[:n] {
			args = append(args, r.RequestID, r.TraceID, r.Function, r.Start.UnixNano(), r.Data)
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("store: inserting %d traces: %w", n, err)
		}
		rows = rows[n:]
	}
	if keep > 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM traces WHERE id <= (SELECT MAX(id) FROM traces) - ?`, keep); err != nil {
			return fmt.Errorf("store: trimming traces: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: committing trace batch: %w", err)
	}
	return nil
}

// Trace returns the newest trace of requestID (an async invocation retried
// under the same id has one per attempt), or ErrNotFound.
func (s *Store) Trace(ctx context.Context, requestID string) (TraceRow, error) {
	var r TraceRow
	var ns int64
	err := s.db.QueryRowContext(ctx, `SELECT request_id, trace_id, function, start_ns, data FROM traces
		WHERE request_id = ? ORDER BY id DESC LIMIT 1`, requestID).Scan(&r.RequestID, &r.TraceID, &r.Function, &ns, &r.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return TraceRow{}, fmt.Errorf("store: trace of %s: %w", requestID, ErrNotFound)
	}
	if err != nil {
		return TraceRow{}, fmt.Errorf("store: reading trace of %s: %w", requestID, err)
	}
	r.Start = time.Unix(0, ns)
	return r, nil
}

// Traces returns function's newest traces, newest first, at most limit
// (> 0) of them.
func (s *Store) Traces(ctx context.Context, function string, limit int) ([]TraceRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT request_id, trace_id, function, start_ns, data FROM traces
		WHERE function = ? ORDER BY id DESC LIMIT ?`, function, limit)
	if err != nil {
		return nil, fmt.Errorf("store: listing traces of %s: %w", function, err)
	}
	defer rows.Close()
	var out []TraceRow
	for rows.Next() {
		var r TraceRow
		var ns int64
		if err := rows.Scan(&r.RequestID, &r.TraceID, &r.Function, &ns, &r.Data); err != nil {
			return nil, fmt.Errorf("store: reading trace: %w", err)
		}
		r.Start = time.Unix(0, ns)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing traces of %s: %w", function, err)
	}
	return out, nil
}
