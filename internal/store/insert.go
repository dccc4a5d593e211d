package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"

	"github.com/stokehq/stoke/internal/record"
)

// The writer writes its batches through the driver's own interfaces, on a
// connection it keeps (writer.conn), with its statements prepared once:
// database/sql converted and checked every argument again (26 a record)
// and allocated a fresh 33 KB argument array per 32-row INSERT, a twentieth
// of the writer's CPU.

// sqliteConn is what the writer uses of the driver's connection.
type sqliteConn interface {
	driver.ConnBeginTx
	driver.ConnPrepareContext
}

// recordsPerInsert is how many records one INSERT statement carries. One
// statement per row cost the driver's per-call work (locks, a result) on
// every row; a statement per 32 rows pays it once for all of them, and
// 32 × 26 parameters stay far below SQLite's limit on bound parameters.
var recordsPerInsert = 32

const recordInsert = `INSERT INTO records (request_id, function, version, start_ns, cold,
	init_ms, queue_ms, duration_ms, billed_ms, memory_mb, max_memory_mb, status, error_type,
	instance_id, method, path, trace_id, parent_span, gateway_span, invoke_span, sampled, invoke_ns, end_ns, init_boost, cache, cache_ms)
	VALUES `

const recordParams = 26

// insertSQL is the INSERT of n records.
func insertSQL(n int) string {
	row := "(" + strings.Repeat("?,", recordParams-1) + "?)"
	return recordInsert + strings.Repeat(row+",", n-1) + row
}

const chunkInsert = `INSERT INTO log_chunks (function, lines, data) VALUES (?,?,?)`

// writeOn writes the batch in one transaction on c.
func (w *writer) writeOn(ctx context.Context, c sqliteConn) (err error) {
	tx, err := c.BeginTx(ctx, driver.TxOptions{})
	if err != nil {
		return fmt.Errorf("beginning batch: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if err := w.insertRecords(ctx, c); err != nil {
		return err
	}
	if err := w.insertLogs(ctx, c); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing batch: %w", err)
	}
	return nil
}

// prepared returns *st, preparing query on c the first time.
func prepared(ctx context.Context, c sqliteConn, st *driver.Stmt, query string) (driver.StmtExecContext, error) {
	if *st == nil {
		s, err := c.PrepareContext(ctx, query)
		if err != nil {
			return nil, err
		}
		*st = s
	}
	ex, ok := (*st).(driver.StmtExecContext)
	if !ok {
		return nil, fmt.Errorf("the sqlite driver's statement is a %T, without ExecContext", *st)
	}
	return ex, nil
}

// execArgs runs st with args as its parameters, in order; it empties args.
func execArgs(ctx context.Context, st driver.StmtExecContext, args []driver.NamedValue) error {
	for i := range args {
		args[i].Ordinal = i + 1
	}
	_, err := st.ExecContext(ctx, args)
	clear(args) // lets the rows' strings go
	return err
}

// insertRecords writes the batch's records in statements of
// recordsPerInsert rows.
func (w *writer) insertRecords(ctx context.Context, c sqliteConn) error {
	recs := w.b.recs
	if len(recs) == 0 {
		return nil
	}
	full, err := prepared(ctx, c, &w.full, insertSQL(recordsPerInsert))
	if err != nil {
		return fmt.Errorf("preparing record insert: %w", err)
	}
	one, err := prepared(ctx, c, &w.one, insertSQL(1))
	if err != nil {
		return fmt.Errorf("preparing record insert: %w", err)
	}
	for len(recs) > 0 {
		// The rest of a batch goes a row at a time: parsing a statement
		// of its own length would cost more than the calls it saves.
		n, st := 1, one
		if len(recs) >= recordsPerInsert {
			n, st = recordsPerInsert, full
		}
		args := w.args[:0]
		for i := range recs[:n] {
			args = appendRecord(args, &recs[i])
		}
		w.args = args
		if err := execArgs(ctx, st, args); err != nil {
			return fmt.Errorf("inserting %d records (first %s): %w", n, recs[0].RequestID, err)
		}
		recs = recs[n:]
	}
	return nil
}

// appendRecord appends r's recordParams values, as driver values, in
// recordInsert's order.
func appendRecord(args []driver.NamedValue, r *record.Record) []driver.NamedValue {
	start := r.Start.UnixNano()
	traceID := r.TraceID[:]
	if r.TraceID == ([16]byte{}) {
		traceID = []byte{} // untraced: X'', as rows from before tracing
	}
	for _, v := range [recordParams]any{r.RequestID, r.Function, r.Version, start, r.Cold,
		r.InitMS, r.QueueMS, r.DurationMS, r.BilledMS, int64(r.MemoryMB), int64(r.MaxMemoryMB), int64(r.Status), r.ErrorType,
		r.InstanceID, r.Method, r.Path, traceID, spanInt(r.ParentSpan), spanInt(r.GatewaySpan), spanInt(r.InvokeSpan),
		r.Sampled, offsetNS(start, r.InvokeStart), offsetNS(start, r.End), r.InitBoost, r.Cache, r.CacheMS} {
		args = append(args, driver.NamedValue{Value: v})
	}
	return args
}

// insertLogs writes the batch's log lines, a chunk per function.
func (w *writer) insertLogs(ctx context.Context, c sqliteConn) error {
	if len(w.b.logs) == 0 {
		return nil
	}
	st, err := prepared(ctx, c, &w.chunkSt, chunkInsert)
	if err != nil {
		return fmt.Errorf("preparing log insert: %w", err)
	}
	for fn, lines := range chunkLogs(w.b.logs) {
		// The driver copies data while binding it: the buffer is reused
		// for the next chunk.
		data, err := appendChunk(w.chunk[:0], lines)
		if err != nil {
			return fmt.Errorf("encoding log lines: %w", err)
		}
		w.chunk = data
		w.args = append(w.args[:0], driver.NamedValue{Value: fn}, driver.NamedValue{Value: int64(len(lines))}, driver.NamedValue{Value: data})
		if err := execArgs(ctx, st, w.args); err != nil {
			return fmt.Errorf("inserting log lines: %w", err)
		}
	}
	if cap(w.chunk) > 1<<20 {
		w.chunk = nil // a burst's buffer is let go
	}
	return nil
}
