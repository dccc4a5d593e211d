package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// recordsPerInsert is how many records one INSERT statement carries. One
// statement per row cost database/sql's and the driver's per-call work
// (locks, argument conversion, a result) on every row; a statement per 32
// rows pays it once for all of them, and 32 × 26 parameters stay far
// below SQLite's limit on bound parameters.
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

// insertRecords writes the batch's records in statements of
// recordsPerInsert rows.
func (w *writer) insertRecords(ctx context.Context, tx *sql.Tx) error {
	recs := w.b.recs
	if len(recs) == 0 {
		return nil
	}
	if w.full == nil {
		full, err := w.s.db.PrepareContext(ctx, insertSQL(recordsPerInsert))
		if err != nil {
			return fmt.Errorf("preparing record insert: %w", err)
		}
		one, err := w.s.db.PrepareContext(ctx, insertSQL(1))
		if err != nil {
			full.Close()
			return fmt.Errorf("preparing record insert: %w", err)
		}
		w.full, w.one = full, one
	}
	args := w.args[:0]
	for len(recs) > 0 {
		// The rest of a batch goes a row at a time: parsing a statement
		// of its own length would cost more than the calls it saves.
		n := 1
		if len(recs) >= recordsPerInsert {
			n = recordsPerInsert
		}
		args = args[:0]
		for i := range recs[:n] {
			r := &recs[i]
			start := r.Start.UnixNano()
			traceID := r.TraceID[:]
			if r.TraceID == ([16]byte{}) {
				traceID = []byte{} // untraced: X'', as rows from before tracing
			}
			args = append(args, r.RequestID, r.Function, r.Version, start, r.Cold,
				r.InitMS, r.QueueMS, r.DurationMS, r.BilledMS, r.MemoryMB, r.MaxMemoryMB, r.Status, r.ErrorType,
				r.InstanceID, r.Method, r.Path, traceID, spanInt(r.ParentSpan), spanInt(r.GatewaySpan), spanInt(r.InvokeSpan),
				r.Sampled, offsetNS(start, r.InvokeStart), offsetNS(start, r.End), r.InitBoost, r.Cache, r.CacheMS)
		}
		st := w.one
		if n == recordsPerInsert {
			st = w.full
		}
		_, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("inserting %d records (first %s): %w", n, recs[0].RequestID, err)
		}
		recs = recs[n:]
	}
	clear(args)
	w.args = args
	return nil
}
