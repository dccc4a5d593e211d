package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stokehq/stoke/internal/record"
)

// Version is one deployed version of a function.
type Version struct {
	Function    string
	Version     int
	Fingerprint string // hash of what makes a version different (config, build output)
	Config      []byte // the function's config as JSON
	Created     time.Time
}

// PutVersion saves v, replacing a row with the same function and version.
func (s *Store) PutVersion(ctx context.Context, v Version) error {
	if v.Created.IsZero() {
		v.Created = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO versions (function, version, fingerprint, config, created_ns)
		VALUES (?,?,?,?,?)`, v.Function, v.Version, v.Fingerprint, v.Config, v.Created.UnixNano())
	if err != nil {
		return fmt.Errorf("store: saving version %s:%d: %w", v.Function, v.Version, err)
	}
	return nil
}

// Versions returns the latest version of every function, by function name.
func (s *Store) Versions(ctx context.Context) ([]Version, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT function, version, fingerprint, config, created_ns FROM versions v
		WHERE version = (SELECT MAX(version) FROM versions WHERE function = v.function)
		ORDER BY function`)
	if err != nil {
		return nil, fmt.Errorf("store: listing versions: %w", err)
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		var v Version
		var ns int64
		if err := rows.Scan(&v.Function, &v.Version, &v.Fingerprint, &v.Config, &ns); err != nil {
			return nil, fmt.Errorf("store: reading version: %w", err)
		}
		v.Created = time.Unix(0, ns)
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing versions: %w", err)
	}
	return out, nil
}

// NextVersion is the version number a deploy of function with this
// fingerprint gets: the latest version again if nothing changed, otherwise
// latest+1 (1 for a new function). It does not save anything; the caller
// PutVersions when changed, and must not run two deploys of one function at
// once.
func (s *Store) NextVersion(ctx context.Context, function, fingerprint string) (version int, changed bool, err error) {
	var latest int
	var fp string
	err = s.db.QueryRowContext(ctx, `SELECT version, fingerprint FROM versions WHERE function = ?
		ORDER BY version DESC LIMIT 1`, function).Scan(&latest, &fp)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 1, true, nil
	case err != nil:
		return 0, false, fmt.Errorf("store: reading latest version of %s: %w", function, err)
	case fp == fingerprint:
		return latest, false, nil
	default:
		return latest + 1, true, nil
	}
}

// keptConfigs is how many deployed configs are kept; only the last is read,
// the rest are history for a human with sqlite3.
const keptConfigs = 20

// PutConfig records the config file (its path and bytes) of a deploy, so a
// restart without -f can serve the same functions.
func (s *Store) PutConfig(ctx context.Context, path string, yaml []byte) error {
	if yaml == nil {
		yaml = []byte{}
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO deployments (path, yaml, created_ns) VALUES (?,?,?)`,
		path, yaml, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("store: saving config %s: %w", path, err)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM deployments WHERE id <= (
		SELECT id FROM deployments ORDER BY id DESC LIMIT 1 OFFSET ?)`, keptConfigs); err != nil {
		return fmt.Errorf("store: trimming old configs: %w", err)
	}
	return nil
}

// LastConfig returns the config saved by the last PutConfig, or ErrNotFound.
func (s *Store) LastConfig(ctx context.Context) (path string, yaml []byte, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT path, yaml FROM deployments ORDER BY id DESC LIMIT 1`).Scan(&path, &yaml)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, fmt.Errorf("store: no deployed config: %w", ErrNotFound)
	}
	if err != nil {
		return "", nil, fmt.Errorf("store: reading last config: %w", err)
	}
	return path, yaml, nil
}

// Query selects records. Zero fields do not filter.
type Query struct {
	Function string
	ColdOnly bool
	Limit    int // ≤ 0: no limit
	Since    time.Time
	// Before pages back: only invocations that started before it.
	Before time.Time
}

const recordColumns = `request_id, function, version, start_ns, cold, init_ms, queue_ms, duration_ms, billed_ms,
	memory_mb, max_memory_mb, status, error_type, instance_id, method, path,
	trace_id, parent_span, gateway_span, invoke_span, sampled, invoke_ns, end_ns, init_boost, cache, cache_ms`

func scanRecord(sc interface{ Scan(...any) error }) (record.Record, error) {
	var r record.Record
	var ns int64
	var traceID []byte
	var parent, gateway, invoke int64
	var invokeNS, endNS sql.NullInt64
	err := sc.Scan(&r.RequestID, &r.Function, &r.Version, &ns, &r.Cold, &r.InitMS, &r.QueueMS, &r.DurationMS,
		&r.BilledMS, &r.MemoryMB, &r.MaxMemoryMB, &r.Status, &r.ErrorType, &r.InstanceID, &r.Method, &r.Path,
		&traceID, &parent, &gateway, &invoke, &r.Sampled, &invokeNS, &endNS, &r.InitBoost, &r.Cache, &r.CacheMS)
	r.Start = time.Unix(0, ns)
	copy(r.TraceID[:], traceID)
	binary.BigEndian.PutUint64(r.ParentSpan[:], uint64(parent))
	binary.BigEndian.PutUint64(r.GatewaySpan[:], uint64(gateway))
	binary.BigEndian.PutUint64(r.InvokeSpan[:], uint64(invoke))
	if invokeNS.Valid {
		r.InvokeStart = time.Unix(0, ns+invokeNS.Int64)
	}
	if endNS.Valid {
		r.End = time.Unix(0, ns+endNS.Int64)
	}
	return r, err
}

// Records returns the written records matching q, newest first: by start
// time (a long request that finished last started earlier), then by write
// order for requests that started in the same nanosecond.
func (s *Store) Records(ctx context.Context, q Query) ([]record.Record, error) {
	var where []string
	var args []any
	if q.Function != "" {
		where = append(where, "function = ?")
		args = append(args, q.Function)
	}
	if q.ColdOnly {
		where = append(where, "cold")
	}
	if !q.Since.IsZero() {
		where = append(where, "start_ns >= ?")
		args = append(args, q.Since.UnixNano())
	}
	if !q.Before.IsZero() {
		where = append(where, "start_ns < ?")
		args = append(args, q.Before.UnixNano())
	}
	sqlq := "SELECT " + recordColumns + " FROM records"
	if len(where) > 0 {
		sqlq += " WHERE " + strings.Join(where, " AND ")
	}
	sqlq += " ORDER BY start_ns DESC, id DESC"
	if q.Limit > 0 {
		sqlq += " LIMIT ?"
		args = append(args, q.Limit)
	}
	return s.queryRecords(ctx, "querying records", sqlq, args...)
}

// queryRecords runs query, a SELECT of recordColumns, and reads every row
// it returns; its errors say what was being done.
func (s *Store) queryRecords(ctx context.Context, doing, query string, args ...any) ([]record.Record, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", doing, err)
	}
	defer rows.Close()
	var out []record.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %s: reading a record: %w", doing, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", doing, err)
	}
	return out, nil
}

// Record returns the record of one request (the latest, if an async
// invocation was retried under the same id), or ErrNotFound.
func (s *Store) Record(ctx context.Context, requestID string) (record.Record, error) {
	return s.queryRecord(ctx, "record "+requestID, "SELECT "+recordColumns+
		" FROM records WHERE request_id = ? ORDER BY id DESC LIMIT 1", requestID)
}

// queryRecord runs query, a SELECT of recordColumns, for its first row;
// what names the record in errors, ErrNotFound when there is none.
func (s *Store) queryRecord(ctx context.Context, what, query string, args ...any) (record.Record, error) {
	r, err := scanRecord(s.db.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return record.Record{}, fmt.Errorf("store: %s: %w", what, ErrNotFound)
	}
	if err != nil {
		return record.Record{}, fmt.Errorf("store: reading %s: %w", what, err)
	}
	return r, nil
}

// Log streams.
const (
	StreamStdout   = "stdout"
	StreamStderr   = "stderr"
	StreamPlatform = "platform" // START, END, REPORT and Stoke's own lines
)

// LogLine is one line of a function's log.
type LogLine struct {
	Seq      int64 // assigned when written; increases, never reused
	Function string
	Time     time.Time
	Stream   string // StreamStdout, StreamStderr or StreamPlatform
	Instance string
	Text     string
	// Node is the cluster node the line was logged on (set by the
	// cluster's merged view; empty on one node).
	Node string `json:",omitempty"`
}

// Logs returns up to limit (≤ 0: no limit) written lines of function ("" for
// all functions) with Seq > afterSeq, oldest first. A follower polls with the
// Seq of the last line it got.
func (s *Store) Logs(ctx context.Context, function string, afterSeq int64, limit int) ([]LogLine, error) {
	var out []LogLine
	after := afterSeq
	for {
		q := "SELECT id, function, data FROM log_chunks WHERE id >= ?"
		args := []any{after >> seqShift}
		if function != "" {
			q += " AND function = ?"
			args = append(args, function)
		}
		q += " ORDER BY id LIMIT 64"
		chunks, err := s.queryChunks(ctx, q, args...)
		if err != nil || len(chunks) == 0 {
			return out, err
		}
		for _, c := range chunks {
			for _, l := range c {
				if l.Seq <= afterSeq {
					continue
				}
				out = append(out, l)
				if limit > 0 && len(out) == limit {
					return out, nil
				}
			}
		}
		last := chunks[len(chunks)-1]
		after = (last[0].Seq>>seqShift + 1) << seqShift
	}
}

// TailLogs returns the last n written lines of function ("" for all), oldest
// first.
func (s *Store) TailLogs(ctx context.Context, function string, n int) ([]LogLine, error) {
	if n <= 0 {
		return nil, nil
	}
	var out []LogLine // newest first while collecting
	before := int64(1) << 62
	for len(out) < n {
		q := "SELECT id, function, data FROM log_chunks WHERE id < ?"
		args := []any{before}
		if function != "" {
			q += " AND function = ?"
			args = append(args, function)
		}
		q += " ORDER BY id DESC LIMIT 64"
		chunks, err := s.queryChunks(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		if len(chunks) == 0 {
			break
		}
		for _, c := range chunks {
			for i := len(c) - 1; i >= 0 && len(out) < n; i-- {
				out = append(out, c[i])
			}
		}
		before = chunks[len(chunks)-1][0].Seq >> seqShift
	}
	slices.Reverse(out)
	return out, nil
}

// queryChunks reads log chunks (id, function, data) and decodes their lines.
func (s *Store) queryChunks(ctx context.Context, q string, args ...any) ([][]LogLine, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: querying logs: %w", err)
	}
	defer rows.Close()
	var out [][]LogLine
	for rows.Next() {
		var id int64
		var fn string
		var data []byte
		if err := rows.Scan(&id, &fn, &data); err != nil {
			return nil, fmt.Errorf("store: reading log chunk: %w", err)
		}
		lines, err := decodeChunk(id, fn, data)
		if err != nil {
			return nil, fmt.Errorf("store: decoding log chunk %d: %w", id, err)
		}
		if len(lines) > 0 {
			out = append(out, lines)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: querying logs: %w", err)
	}
	return out, nil
}
