// Package store is Stoke's embedded SQLite database under data_dir: deployed
// versions, the last deployed config, invocation records and function logs.
//
// Records and log lines arrive on the request path, so they are queued and
// written in batches by one writer goroutine; when the queue is full they are
// dropped and counted rather than slowing a request down. Everything else is
// written synchronously. Retention is bounded per function.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stokehq/stoke/internal/record"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrNotFound is returned (wrapped) when a looked-up row does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("store: closed")

// Options tunes the store; zero fields take the defaults.
type Options struct {
	MaxRecords  int // per function; default 100,000
	MaxLogLines int // per function; default 200,000
	// QueueSize bounds records and log lines waiting for the writer; beyond
	// it they are dropped. Default 16,384.
	QueueSize     int
	BatchSize     int           // rows per transaction; default 500
	FlushInterval time.Duration // longest a queued row waits; default 50ms
	// PruneInterval is how often functions that got new rows are trimmed to
	// their limits even if they have not grown by 10% yet. Default 1 minute.
	PruneInterval time.Duration
	Logger        *slog.Logger // default slog.Default()
}

func (o *Options) defaults() {
	if o.MaxRecords <= 0 {
		o.MaxRecords = 100_000
	}
	if o.MaxLogLines <= 0 {
		o.MaxLogLines = 200_000
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 16_384
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 50 * time.Millisecond
	}
	if o.PruneInterval <= 0 {
		o.PruneInterval = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Store is the database. Its methods are safe for concurrent use.
type Store struct {
	db   *sql.DB
	opts Options
	log  *slog.Logger

	// Records and log lines wait in pending until the writer takes them
	// as a batch. Adding one wakes the writer only when a batch starts or
	// fills: a channel send per row woke it (a futex call and a scheduler
	// hand-off) four times per request.
	mu      sync.Mutex
	pending batch
	closed  bool
	started chan struct{} // cap 1: a batch started
	full    chan struct{} // cap 1: a batch reached BatchSize
	flushes chan chan error
	stop    chan struct{}
	stopped chan struct{} // closed when the writer goroutine has exited
	dropped atomic.Int64
	once    sync.Once

	path string   // the database file
	lock *dirLock // data_dir/stoke.lock, held while open
	lost atomic.Int64
	wh   writeHealth // faults.go
}

// batch is what the writer writes in one transaction.
type batch struct {
	recs []record.Record
	logs []LogLine
}

func (b *batch) len() int { return len(b.recs) + len(b.logs) }

// Open opens (creating if needed) <dir>/stoke.db with default options.
func Open(ctx context.Context, dir string) (*Store, error) {
	return OpenWith(ctx, dir, Options{})
}

// OpenWith opens (creating if needed) <dir>/stoke.db, migrates its schema and
// starts the writer goroutine.
func OpenWith(ctx context.Context, dir string, o Options) (*Store, error) {
	o.defaults()
	// data_dir holds every record, log line and event payload, and the
	// stored config: Stoke's alone (0700, its files 0600).
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: creating data dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: data_dir %s must be writable by the user stoke runs as: %w", dir, err)
	}
	lock, err := lockDataDir(dir)
	if err != nil {
		return nil, err
	}
	s, err := openLocked(ctx, dir, o, lock)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

func openLocked(ctx context.Context, dir string, o Options, lock *dirLock) (*Store, error) {
	path := filepath.Join(dir, "stoke.db")
	// SQLite gives its -wal and -shm files the database file's mode.
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if f == path {
			if fh, err := os.OpenFile(f, os.O_CREATE|os.O_RDONLY, 0o600); err == nil {
				fh.Close()
			}
		}
		if err := os.Chmod(f, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	// WAL lets readers (admin API, CLI) run while the writer commits;
	// synchronous=NORMAL is durable across process crashes, which is what
	// matters here; busy_timeout covers the synchronous writes racing the
	// batch writer; immediate transactions take the write lock up front so
	// they wait on busy_timeout instead of failing on a lock upgrade.
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, explainOpen(path, err)
	}
	// The writer keeps a connection of its own; the pool's are the
	// readers' (admin API, CLI, dashboard) and pruning's. Before it did,
	// the pool kept at most two idle, the writer's among them; one idle
	// beside the writer's keeps that count, and an idle one expires
	// (each holds the database and its WAL open).
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(30 * time.Second)
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, explainOpen(path, fmt.Errorf("migrating: %w", err))
	}
	s := &Store{
		db:      db,
		opts:    o,
		log:     o.Logger.With("component", "store"),
		started: make(chan struct{}, 1),
		full:    make(chan struct{}, 1),
		flushes: make(chan chan error),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
		path:    path,
		lock:    lock,
	}
	if err := probeWritable(ctx, s, 2*time.Second); err != nil {
		db.Close()
		return nil, explainOpen(path, err)
	}
	go s.run()
	return s, nil
}

// migrations[i] moves the schema from user_version i to i+1. Append only.
var migrations = []string{
	`
CREATE TABLE versions (
	function    TEXT    NOT NULL,
	version     INTEGER NOT NULL,
	fingerprint TEXT    NOT NULL,
	config      BLOB,
	created_ns  INTEGER NOT NULL,
	PRIMARY KEY (function, version)
);
CREATE TABLE deployments (
	id         INTEGER PRIMARY KEY,
	path       TEXT    NOT NULL,
	yaml       BLOB    NOT NULL,
	created_ns INTEGER NOT NULL
);
CREATE TABLE records (
	id            INTEGER PRIMARY KEY,
	request_id    TEXT    NOT NULL,
	function      TEXT    NOT NULL,
	version       TEXT    NOT NULL,
	start_ns      INTEGER NOT NULL,
	cold          INTEGER NOT NULL,
	init_ms       REAL    NOT NULL,
	queue_ms      REAL    NOT NULL,
	duration_ms   REAL    NOT NULL,
	billed_ms     INTEGER NOT NULL,
	memory_mb     INTEGER NOT NULL,
	max_memory_mb INTEGER NOT NULL,
	status        INTEGER NOT NULL,
	error_type    TEXT    NOT NULL,
	instance_id   TEXT    NOT NULL,
	method        TEXT    NOT NULL,
	path          TEXT    NOT NULL
);
-- Not unique: Lambda keeps the request id when it retries an async invocation.
CREATE INDEX records_request ON records (request_id);
CREATE INDEX records_function ON records (function, id);
-- AUTOINCREMENT so a seq is never reused and log followers never miss lines.
CREATE TABLE logs (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	function   TEXT    NOT NULL,
	time_ns    INTEGER NOT NULL,
	stream     TEXT    NOT NULL,
	instance   TEXT    NOT NULL,
	text       TEXT    NOT NULL
);
CREATE INDEX logs_function ON logs (function, seq);
`,
	asyncSchema, // async.go
	`
DROP TABLE logs;
-- Log lines are stored in chunks, one row per function per writer batch:
-- a row per line cost more CPU than the request it logged. A line's Seq is
-- chunk id << 20 | its index in the chunk. AUTOINCREMENT so an id is never
-- reused and log followers never miss lines.
CREATE TABLE log_chunks (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	function   TEXT    NOT NULL,
	lines      INTEGER NOT NULL,
	data       BLOB    NOT NULL
);
CREATE INDEX log_chunks_function ON log_chunks (function, id);
`,
	tracesSchema, // traces.go
	recordTraces, // traces.go
	// init_boost: the cold start's init ran without the CPU quota. Rows
	// written before read as not boosted.
	`ALTER TABLE records ADD COLUMN init_boost INTEGER NOT NULL DEFAULT 0;`,
	// Newest first means by start time: a function's records in that order.
	`CREATE INDEX records_function_start ON records (function, start_ns);`,
	usersSchema, // users.go
	// cache, cache_ms: what the function's response cache did before the
	// invocation (record.Record.Cache); '' for rows from before caches.
	`ALTER TABLE records ADD COLUMN cache TEXT NOT NULL DEFAULT '';
ALTER TABLE records ADD COLUMN cache_ms REAL NOT NULL DEFAULT 0;`,
	asyncReliability, // async.go
	// Every reader of a function's records pages by start time
	// (records_function_start), and so does pruning now: the index by
	// (function, id) cost every insert a third secondary index update.
	`DROP INDEX records_function;`,
}

func migrate(ctx context.Context, db *sql.DB) error {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("reading user_version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this stoke (%d)", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("applying migration %d: %w", v+1, err)
		}
		// PRAGMA takes no bind parameters.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("setting user_version %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("committing migration %d: %w", v+1, err)
		}
	}
	return nil
}

// Close writes everything queued, stops the writer and closes the database.
// Rows added concurrently with or after Close are dropped.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.stop)
		<-s.stopped
		err = s.db.Close()
		s.lock.Close() // releases data_dir for the next stoke
	})
	return err
}

// Dropped is how many records and log lines were discarded because the
// writer fell behind (or the store was closed).
func (s *Store) Dropped() int64 { return s.dropped.Load() }

// add queues one row with put, never blocking: a full queue means the disk
// is slower than traffic, and losing a row is better than stalling a
// request.
func (s *Store) add(put func(*batch)) {
	s.mu.Lock()
	n := s.pending.len()
	if s.closed || n >= s.opts.QueueSize {
		s.mu.Unlock()
		s.dropped.Add(1)
		return
	}
	put(&s.pending)
	s.mu.Unlock()
	switch n + 1 {
	case 1:
		signal(s.started)
	case s.opts.BatchSize:
		signal(s.full)
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Add queues an invocation record. It never blocks; r is copied.
func (s *Store) Add(r *record.Record) {
	s.add(func(b *batch) { b.recs = append(b.recs, *r) })
}

// AddLog queues a log line. It never blocks. Its Seq is assigned on write.
func (s *Store) AddLog(l LogLine) {
	s.add(func(b *batch) { b.logs = append(b.logs, l) })
}

// Flush waits until every record and log line added before it was called is
// written (or dropped), and returns the first write error since the last
// Flush.
func (s *Store) Flush(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case s.flushes <- done:
	case <-s.stopped:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("store: flush: %w", ctx.Err())
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("store: flush: %w", ctx.Err())
	}
}
