package store

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/stokehq/stoke/internal/record"
)

// tracesSchema kept one row per traced invocation, its spans as JSON. It is
// superseded by recordTraces and dropped there; kept so the migrations stay
// append-only.
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

// recordTraces keeps an invocation's trace on its record: the ids, and the
// two instants the rest of the record does not give, as offsets from
// start_ns (NULL when unknown: invoke_ns when no instance ran it).
// internal/trace rebuilds the spans from the row, so a trace costs no row
// of its own and is kept as long as its record. Rows written before have an
// empty trace_id and no trace. The traces table goes: its traces can no
// longer be read.
const recordTraces = `
ALTER TABLE records ADD COLUMN trace_id     BLOB    NOT NULL DEFAULT X'';
ALTER TABLE records ADD COLUMN parent_span  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE records ADD COLUMN gateway_span INTEGER NOT NULL DEFAULT 0;
ALTER TABLE records ADD COLUMN invoke_span  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE records ADD COLUMN sampled      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE records ADD COLUMN invoke_ns    INTEGER;
ALTER TABLE records ADD COLUMN end_ns       INTEGER;
DROP TABLE traces;
`

// spanInt is a span id as stored: its 8 bytes as a big-endian integer (0
// for none).
func spanInt(id [8]byte) int64 { return int64(binary.BigEndian.Uint64(id[:])) }

// offsetNS is t as stored, nanoseconds after start; nil (NULL) when t is zero.
func offsetNS(start int64, t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano() - start
}

// Trace returns the newest traced record of requestID (an async invocation
// retried under the same id has one per attempt), or ErrNotFound.
func (s *Store) Trace(ctx context.Context, requestID string) (record.Record, error) {
	return s.queryRecord(ctx, "trace of "+requestID, "SELECT "+recordColumns+
		" FROM records WHERE request_id = ? AND trace_id != X'' ORDER BY id DESC LIMIT 1", requestID)
}

// Traces returns function's newest traced records, newest first, at most
// limit (> 0) of them.
func (s *Store) Traces(ctx context.Context, function string, limit int) ([]record.Record, error) {
	return s.queryRecords(ctx, "listing traces of "+function, "SELECT "+recordColumns+
		" FROM records WHERE function = ? AND trace_id != X'' ORDER BY start_ns DESC, id DESC LIMIT ?", function, limit)
}
