package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Faults of the disk under data_dir. A write that fails (the disk full,
// the file system read-only, the file corrupt) never stops Stoke serving:
// records and log lines that cannot be written are counted as lost,
// logged (once when writes start failing, then at most once a minute, and
// when they succeed again) and reported by Health, which /metrics, the
// admin API and the dashboard's banner read. At start, a data_dir another
// Stoke serves from, and a stoke.db that is locked, corrupt or not a
// database, are refused with an error naming the file and what to do.

// dirLock is a held data_dir/stoke.lock.
type dirLock struct {
	f    *os.File
	path string
}

// held are the lock files of the stores open in this process.
var (
	heldMu sync.Mutex
	held   = map[string]bool{}
)

// Close releases the data_dir.
func (l *dirLock) Close() error {
	heldMu.Lock()
	delete(held, l.path)
	heldMu.Unlock()
	return l.f.Close()
}

// releaseWait bounds how long a lock this process released may stay held
// by a child it was forking at the time (see lockDataDir).
const releaseWait = 2 * time.Second

// lockDataDir takes data_dir/stoke.lock for this process, so two Stokes
// never share a database, an Event queue or function users.
//
// The flock belongs to the open file, which a child forked by this process
// (an instance, a sandbox stub) shares until its exec closes it
// (close-on-exec): a store closed and opened again in one process (a
// restart in tests) can find its own released lock still held for that
// moment. When the holder is this process and no store of it has the
// data_dir open, the lock is waited for, up to releaseWait.
func lockDataDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, "stoke.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: cannot open %s: %w (is data_dir writable by this user?)", path, err)
	}
	heldMu.Lock()
	defer heldMu.Unlock()
	self := strconv.Itoa(os.Getpid())
	for deadline := time.Now().Add(releaseWait); ; time.Sleep(5 * time.Millisecond) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		b, _ := os.ReadFile(path)
		holder := strings.TrimSpace(string(b))
		if holder != self || held[path] || time.Now().After(deadline) {
			f.Close()
			if holder == "" {
				holder = "unknown"
			}
			return nil, fmt.Errorf("store: data_dir %s is in use by another stoke (pid %s, from %s): stop it, or give this one another data_dir", dir, holder, path)
		}
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(self+"\n"), 0)
	held[path] = true
	return &dirLock{f: f, path: path}, nil
}

// probeWritable takes SQLite's write lock once, waiting at most wait: a
// database some other process holds locked is found at start, not at the
// first deploy.
func probeWritable(ctx context.Context, s *Store, wait time.Duration) error {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", wait.Milliseconds())); err != nil {
		return err
	}
	defer c.ExecContext(context.WithoutCancel(ctx), "PRAGMA busy_timeout = 5000")
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	_, err = c.ExecContext(ctx, "COMMIT")
	return err
}

// explainOpen turns a failure to open path into what to do about it.
func explainOpen(path string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "locked") || strings.Contains(msg, "SQLITE_BUSY"):
		return fmt.Errorf("store: %s is locked by another process (a sqlite3 shell, a backup tool, another stoke?): close it and start again (%w)", path, err)
	case strings.Contains(msg, "not a database") || strings.Contains(msg, "malformed") || strings.Contains(msg, "corrupt"):
		return fmt.Errorf("store: %s is corrupt or not a SQLite database (%w): stop stoke, move it aside (mv %s %s.broken; also its -wal and -shm files) and start again: Stoke makes a new one, without the old versions, records, logs and queued events", path, err, path, path)
	case errors.Is(err, syscall.ENOSPC) || strings.Contains(msg, "disk is full") || strings.Contains(msg, "SQLITE_FULL"):
		return fmt.Errorf("store: no space left for %s (%w): free some space under data_dir and start again", path, err)
	case errors.Is(err, syscall.EROFS) || errors.Is(err, os.ErrPermission) || strings.Contains(msg, "readonly") || strings.Contains(msg, "read-only"):
		return fmt.Errorf("store: cannot write %s (%w): data_dir must be writable by the user stoke runs as", path, err)
	}
	return fmt.Errorf("store: opening %s: %w", path, err)
}

// writeHealth is what the store knows of its writes failing.
type writeHealth struct {
	mu        sync.Mutex
	lastErr   string
	since     time.Time // first failure of the run; zero while writes succeed
	lastLog   time.Time
	lostAtLog int64
}

// Health says whether the store can write, and what it lost.
type Health struct {
	Path     string `json:"path"`
	Writable bool   `json:"writable"`
	// Lost counts records and log lines a failed write lost; Dropped those
	// dropped because the writer fell behind (or after Close).
	Lost      int64     `json:"lost"`
	Dropped   int64     `json:"dropped"`
	LastError string    `json:"last_error,omitempty"`
	Since     time.Time `json:"failing_since,omitzero"`
}

// Health reports the store's write health.
func (s *Store) Health() Health {
	s.wh.mu.Lock()
	defer s.wh.mu.Unlock()
	return Health{Path: s.path, Writable: s.wh.since.IsZero(), Lost: s.lost.Load(), Dropped: s.dropped.Load(),
		LastError: s.wh.lastErr, Since: s.wh.since}
}

// Lost is how many records and log lines failed writes lost.
func (s *Store) Lost() int64 { return s.lost.Load() }

// writeFailed counts rows (0 for a write the caller was told about) lost
// to err and logs it, without flooding the log.
func (s *Store) writeFailed(rows int, err error) {
	lost := s.lost.Add(int64(rows))
	now := time.Now()
	h := &s.wh
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastErr = explainWrite(s.path, err)
	switch {
	case h.since.IsZero():
		h.since, h.lastLog, h.lostAtLog = now, now, lost
		s.log.Error("store: cannot write; Stoke keeps serving, and counts the records and log lines it loses (stoke_store_lost_total)",
			"file", s.path, "rows_lost", rows, "err", h.lastErr)
	case now.Sub(h.lastLog) >= time.Minute:
		s.log.Error("store: still cannot write", "file", s.path, "since", h.since, "rows_lost", lost-h.lostAtLog,
			"rows_lost_total", lost, "err", h.lastErr)
		h.lastLog, h.lostAtLog = now, lost
	}
}

// syncWriteFailed notes a failed write whose caller was told (nothing is
// lost silently); a write given up by its context is no fault of the disk.
func (s *Store) syncWriteFailed(ctx context.Context, err error) {
	if ctx.Err() == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		s.writeFailed(0, err)
	}
}

// wrote ends a run of failed writes.
func (s *Store) wrote() {
	h := &s.wh
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.since.IsZero() {
		return
	}
	s.log.Info("store: writes succeed again", "file", s.path, "failing_for", time.Since(h.since).Round(time.Millisecond),
		"rows_lost_total", s.lost.Load())
	h.since, h.lastErr = time.Time{}, ""
}

// explainWrite says what a failed write means for the operator.
func explainWrite(path string, err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "disk is full") || strings.Contains(msg, "SQLITE_FULL") || errors.Is(err, syscall.ENOSPC):
		return fmt.Sprintf("no space left for %s: free some space under data_dir (%v)", path, err)
	case strings.Contains(msg, "readonly") || strings.Contains(msg, "read-only") || errors.Is(err, syscall.EROFS):
		return fmt.Sprintf("%s is read-only: data_dir must be writable (%v)", path, err)
	case strings.Contains(msg, "malformed") || strings.Contains(msg, "corrupt"):
		return fmt.Sprintf("%s is corrupt: stop stoke and move it aside, Stoke makes a new one (%v)", path, err)
	}
	return fmt.Sprintf("writing %s: %v", path, err)
}
