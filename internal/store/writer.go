package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/stokehq/stoke/internal/record"
)

// writer is the state of the goroutine that owns batched writes.
type writer struct {
	s       *Store
	recs    []*record.Record
	logs    []*LogLine
	timer   *time.Timer
	err     error // first write error since the last flush request
	grownR  map[string]int
	grownL  map[string]int
	lastPrn time.Time
	full    *sql.Stmt // the INSERT of recordsPerInsert records, prepared once
	one     *sql.Stmt // the INSERT of one record
	args    []any     // its arguments, reused
}

func (s *Store) run() {
	defer close(s.stopped)
	w := &writer{
		s:       s,
		timer:   time.NewTimer(time.Hour),
		grownR:  map[string]int{},
		grownL:  map[string]int{},
		lastPrn: time.Now(),
	}
	w.timer.Stop()
	for {
		select {
		case it := <-s.queue:
			if it.stop {
				w.drain()
				w.commit()
				w.prune(true)
				w.closeStmts()
				return
			}
			w.take(it)
		case <-w.timer.C:
			w.commit()
		}
	}
}

func (w *writer) closeStmts() {
	for _, st := range []*sql.Stmt{w.full, w.one} {
		if st != nil {
			st.Close()
		}
	}
}

// drain takes whatever is already queued when Close is called.
func (w *writer) drain() {
	for {
		select {
		case it := <-w.s.queue:
			if !it.stop {
				w.take(it)
			}
		default:
			return
		}
	}
}

func (w *writer) take(it item) {
	switch {
	case it.rec != nil:
		w.add(func() { w.recs = append(w.recs, it.rec) })
	case it.log != nil:
		w.add(func() { w.logs = append(w.logs, it.log) })
	case it.done != nil:
		w.commit()
		err := w.err
		w.err = nil
		it.done <- err
	}
}

func (w *writer) add(appendRow func()) {
	if len(w.recs)+len(w.logs) == 0 {
		w.timer.Reset(w.s.opts.FlushInterval)
	}
	appendRow()
	if len(w.recs)+len(w.logs) >= w.s.opts.BatchSize {
		w.commit()
	}
}

// commit writes the pending batch in one transaction, then prunes if due.
func (w *writer) commit() {
	if len(w.recs)+len(w.logs) == 0 {
		return
	}
	w.timer.Stop()
	n := len(w.recs) + len(w.logs)
	if err := w.write(); err != nil {
		w.s.writeFailed(n, err)
		if w.err == nil {
			w.err = err
		}
	} else {
		w.s.wrote()
		for _, r := range w.recs {
			w.grownR[r.Function]++
		}
		for _, l := range w.logs {
			w.grownL[l.Function]++
		}
	}
	clear(w.recs)
	clear(w.logs)
	w.recs, w.logs = w.recs[:0], w.logs[:0]
	w.prune(false)
}

func (w *writer) write() error {
	// Background: a batch already taken off the queue is written even
	// during shutdown; busy_timeout bounds the wait.
	ctx := context.Background()
	tx, err := w.s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning batch: %w", err)
	}
	defer tx.Rollback()
	if err := w.insertRecords(ctx, tx); err != nil {
		return err
	}
	if len(w.logs) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO log_chunks (function, lines, data) VALUES (?,?,?)`)
		if err != nil {
			return fmt.Errorf("preparing log insert: %w", err)
		}
		defer st.Close()
		for fn, lines := range chunkLogs(w.logs) {
			data, err := encodeChunk(lines)
			if err != nil {
				return fmt.Errorf("encoding log lines: %w", err)
			}
			if _, err := st.ExecContext(ctx, fn, len(lines), data); err != nil {
				return fmt.Errorf("inserting log lines: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing batch: %w", err)
	}
	return nil
}

// prune trims functions that got rows to their limits. Trimming costs an
// index walk of up to the limit, so it runs only once a function has grown by
// 10% of its limit or PruneInterval has passed: a function keeps at most 10%
// more than its limit, and the walk costs ~10 index steps per row written.
// (At 1% it was ~100 steps a row, 7% of Stoke's CPU under load.)
func (w *writer) prune(force bool) {
	due := force || time.Since(w.lastPrn) >= w.s.opts.PruneInterval
	w.pruneRecords(due)
	w.pruneChunks(due)
	if due {
		w.lastPrn = time.Now()
	}
}

// pruneRecords trims functions that grew by 10% of MaxRecords (or all that
// grew, when due) to MaxRecords, oldest start first: the order every reader
// pages in, and the one index (function, start_ns) already kept for them.
func (w *writer) pruneRecords(due bool) {
	limit := w.s.opts.MaxRecords
	slack := max(1, limit/10)
	for fn, n := range w.grownR {
		if !due && n < slack {
			continue
		}
		delete(w.grownR, fn)
		// The row at OFFSET limit-1 is the oldest one kept; with fewer rows
		// the subquery is NULL and nothing is deleted.
		res, err := w.s.db.ExecContext(context.Background(), `DELETE FROM records WHERE function = ?1 AND start_ns < (
			SELECT start_ns FROM records WHERE function = ?1 ORDER BY start_ns DESC LIMIT 1 OFFSET ?2)`, fn, limit-1)
		if err != nil {
			w.s.log.Error("pruning", "table", "records", "function", fn, "err", err)
			continue
		}
		if d, _ := res.RowsAffected(); d > 0 {
			w.s.log.Debug("pruned", "table", "records", "function", fn, "rows", d)
		}
	}
}

// pruneChunks trims functions' logs to at most MaxLogLines lines, a whole
// chunk at a time (so a function keeps a little less than the limit).
func (w *writer) pruneChunks(due bool) {
	slack := max(1, w.s.opts.MaxLogLines/10)
	for fn, n := range w.grownL {
		if !due && n < slack {
			continue
		}
		delete(w.grownL, fn)
		// The newest chunk at which the running line count, newest first,
		// passes the limit is the first one to go, with all older ones.
		_, err := w.s.db.ExecContext(context.Background(), `DELETE FROM log_chunks WHERE function = ?1 AND id <= (
			SELECT id FROM (SELECT id, SUM(lines) OVER (ORDER BY id DESC) AS kept FROM log_chunks WHERE function = ?1)
			WHERE kept > ?2 ORDER BY id DESC LIMIT 1)`, fn, w.s.opts.MaxLogLines)
		if err != nil {
			w.s.log.Error("pruning", "table", "log_chunks", "function", fn, "err", err)
		}
	}
}
