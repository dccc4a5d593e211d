package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"time"
)

// writer is the state of the goroutine that owns batched writes.
type writer struct {
	s       *Store
	b       batch // being written
	spare   batch // the next pending batch's storage
	err     error // first write error since the last flush request
	grownR  map[string]int
	grownL  map[string]int
	lastPrn time.Time
	conn    *sql.Conn           // the writer's own connection (insert.go)
	full    driver.Stmt         // the INSERT of recordsPerInsert records, prepared on conn
	one     driver.Stmt         // the INSERT of one record
	chunkSt driver.Stmt         // the INSERT of a log chunk
	args    []driver.NamedValue // a statement's arguments, reused
	chunk   []byte              // a log chunk's data, reused
}

// run writes batches: one once a batch has waited FlushInterval since its
// first row, or has BatchSize rows, or someone flushes; then everything at
// Close.
func (s *Store) run() {
	defer close(s.stopped)
	w := &writer{
		s:       s,
		grownR:  map[string]int{},
		grownL:  map[string]int{},
		lastPrn: time.Now(),
	}
	defer w.closeConn()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-s.started:
			timer.Reset(s.opts.FlushInterval)
			select {
			case <-timer.C:
			case <-s.full:
			case done := <-s.flushes:
				w.flush(done)
			case <-s.stop:
				w.close()
				return
			}
			timer.Stop()
			w.commit()
		case <-s.full:
			w.commit()
		case done := <-s.flushes:
			w.flush(done)
		case <-s.stop:
			w.close()
			return
		}
	}
}

// flush answers a Flush once everything added before it is written.
func (w *writer) flush(done chan<- error) {
	w.commitAll()
	done <- w.err
	w.err = nil
}

// close writes what is left, and prunes.
func (w *writer) close() {
	w.commitAll()
	w.prune(true)
}

// commitAll writes every pending row.
func (w *writer) commitAll() {
	for w.commit() {
	}
}

// closeConn closes the writer's statements and gives its connection back.
func (w *writer) closeConn() {
	if w.conn == nil {
		return
	}
	_ = w.conn.Raw(func(any) error {
		for _, st := range []driver.Stmt{w.full, w.one, w.chunkSt} {
			if st != nil {
				st.Close()
			}
		}
		return nil
	})
	w.full, w.one, w.chunkSt = nil, nil, nil
	w.conn.Close()
	w.conn = nil
}

// commit writes up to BatchSize pending rows in one transaction (a log
// chunk is a function's lines of one batch, so batches keep their size),
// then prunes if due. It says whether rows are left.
func (w *writer) commit() (more bool) {
	s := w.s
	s.mu.Lock()
	if s.pending.len() <= s.opts.BatchSize {
		w.b, s.pending = s.pending, w.spare
	} else {
		w.b = w.spare
		p := &s.pending
		nr := min(len(p.recs), s.opts.BatchSize)
		nl := s.opts.BatchSize - nr
		w.b.recs = append(w.b.recs, p.recs[:nr]...)
		w.b.logs = append(w.b.logs, p.logs[:nl]...)
		kr, kl := copy(p.recs, p.recs[nr:]), copy(p.logs, p.logs[nl:])
		clear(p.recs[kr:])
		clear(p.logs[kl:])
		p.recs, p.logs = p.recs[:kr], p.logs[:kl]
	}
	// Whatever is left is a batch already started (or full).
	left := s.pending.len()
	switch {
	case left >= s.opts.BatchSize:
		signal(s.full)
	case left > 0:
		signal(s.started)
	}
	s.mu.Unlock()
	n := w.b.len()
	if n == 0 {
		w.spare = w.b
		return false
	}
	if err := w.write(); err != nil {
		w.s.writeFailed(n, err)
		if w.err == nil {
			w.err = err
		}
	} else {
		w.s.wrote()
		for i := range w.b.recs {
			w.grownR[w.b.recs[i].Function]++
		}
		for i := range w.b.logs {
			w.grownL[w.b.logs[i].Function]++
		}
	}
	// Cleared, so the batch's strings can be collected while the storage
	// waits to be reused; a burst's much larger storage is let go.
	clear(w.b.recs)
	clear(w.b.logs)
	w.spare = batch{recs: w.b.recs[:0], logs: w.b.logs[:0]}
	if keep := 4 * w.s.opts.BatchSize; cap(w.spare.recs) > keep || cap(w.spare.logs) > keep {
		w.spare = batch{}
	}
	w.b = batch{}
	w.prune(false)
	return left > 0
}

func (w *writer) write() error {
	// Background: a batch already taken off the queue is written even
	// during shutdown; busy_timeout bounds the wait.
	ctx := context.Background()
	if w.conn == nil {
		c, err := w.s.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("beginning batch: %w", err)
		}
		w.conn = c
	}
	err := w.conn.Raw(func(dc any) error {
		c, ok := dc.(sqliteConn)
		if !ok {
			return fmt.Errorf("the sqlite driver's connection is a %T, without BeginTx or PrepareContext", dc)
		}
		return w.writeOn(ctx, c)
	})
	if err != nil {
		// The next batch starts on a connection of its own again.
		w.closeConn()
	}
	return err
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
