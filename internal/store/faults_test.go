package store

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// A full data_dir loses the records and logs that cannot be written —
// counted, reported, never a crash — and reads still work; writes resume
// once there is space. An Event that cannot be queued is refused to its
// caller, so it is not lost either.
func TestDiskFull(t *testing.T) {
	dir := sandboxtest.Tmpfs(t, "", "4m")
	s := open(t, dir, Options{FlushInterval: 5 * time.Millisecond})
	ctx := context.Background()
	for i := range 10 {
		s.Add(rec("f", i, false))
	}
	flush(t, s)
	filler := sandboxtest.Fill(t, dir)
	for i := 10; i < 2000; i++ {
		s.Add(rec("f", i, false))
		s.AddLog(LogLine{Function: "f", Time: time.Now(), Stream: "stdout", Text: strings.Repeat("x", 200)})
	}
	if err := s.Flush(ctx); err == nil {
		t.Fatal("a flush onto a full disk reported no error")
	}
	h := s.Health()
	if h.Writable || h.Lost == 0 || !strings.Contains(h.LastError, "no space left for "+filepath.Join(dir, "stoke.db")) || h.Since.IsZero() {
		t.Fatalf("health on a full disk: %+v", h)
	}
	if recs, err := s.Records(ctx, Query{Function: "f", Limit: 100}); err != nil || len(recs) < 10 {
		t.Fatalf("reading on a full disk: %d records, %v", len(recs), err)
	}
	if _, err := s.Enqueue(ctx, AsyncItem{Function: "f", RequestID: "r", Payload: []byte(strings.Repeat("p", 64<<10))}); err == nil {
		t.Error("an Event was accepted onto a full disk")
	}
	// Space again: writes resume, and the health says so.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	s.Add(rec("f", 5000, false))
	flush(t, s)
	if h := s.Health(); !h.Writable || h.Lost == 0 || h.LastError != "" {
		t.Fatalf("health once there is space again: %+v", h)
	}
	if recs, err := s.Records(ctx, Query{Function: "f", Limit: 1}); err != nil || len(recs) != 1 || recs[0].RequestID != "f-5000" {
		t.Fatalf("the record written after the disk freed: %+v %v", recs, err)
	}
}

// A read-only data_dir at start is refused, saying so. (One that turns
// read-only while Stoke runs fails its writes like a full disk, above: a
// file system cannot be remounted read-only under files open for writing
// short of a kernel error, so that case is not made here.)
func TestReadOnlyDataDirRefused(t *testing.T) {
	dir := sandboxtest.Tmpfs(t, "", "8m")
	s := open(t, dir, Options{})
	s.Close()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	_, err := Open(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "data_dir "+dir+" must be writable") || !strings.Contains(err.Error(), "read-only file system") {
		t.Fatalf("opening a read-only data_dir: %v", err)
	}
}

// A stoke.db that is not a database is refused at start, naming the file
// and what to do.
func TestCorruptDatabaseRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stoke.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database at all ", 400)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), path+" is corrupt or not a SQLite database") ||
		!strings.Contains(err.Error(), "mv "+path+" "+path+".broken") {
		t.Fatalf("opening a corrupt database: %v", err)
	}
	// It released data_dir: once moved aside, Stoke starts.
	if err := os.Rename(path, path+".broken"); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir, Options{})
	s.Close()
}

// A stoke.db another process holds locked is refused at start, after a
// short wait, naming the file.
func TestLockedDatabaseRefused(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	s.Close()
	path := filepath.Join(dir, "stoke.db")
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	other, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), path+" is locked by another process") {
		t.Fatalf("opening a locked database: %v", err)
	}
	if _, err := c.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, Options{})
	s.Close()
}

// Two Stokes never share a data_dir.
func TestDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, Options{})
	_, err := Open(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "is in use by another stoke (pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("a second store on the same data_dir: %v", err)
	}
}

// A child forked while the store was open shares its lock until its exec
// (close-on-exec): the same process opening the data_dir again right after
// Close waits for it instead of refusing its own released lock
// (TestEventSurvivesRestart failed so under load). A store of this
// process still open is refused at once.
func TestReopenWhileAChildHoldsTheReleasedLock(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	begin := time.Now()
	if _, err := Open(context.Background(), dir); err == nil || time.Since(begin) >= releaseWait {
		t.Fatalf("a second store while the first is open: %v after %s", err, time.Since(begin))
	}
	child := exec.Command("cat") // holds the lock's open file until its stdin closes
	child.ExtraFiles = []*os.File{s.lock.f}
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Wait()
	defer stdin.Close()
	s.Close()
	opened := make(chan error, 1)
	go func() {
		s2, err := Open(context.Background(), dir)
		if err == nil {
			s2.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		t.Fatalf("opened while the child held the lock: %v", err)
	case <-time.After(50 * time.Millisecond): // still waiting, as it should
	}
	stdin.Close() // the child exits, as a fork execs
	if err := <-opened; err != nil {
		t.Fatalf("reopening once the child let go: %v", err)
	}
}
