package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/record"
)

func open(t testing.TB, dir string, o Options) *Store {
	t.Helper()
	s, err := OpenWith(context.Background(), dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func flush(t testing.TB, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func rec(fn string, i int, cold bool) *record.Record {
	return &record.Record{
		RequestID:   fmt.Sprintf("%s-%04d", fn, i),
		Function:    fn,
		Version:     "3",
		Start:       time.Unix(1700000000, int64(i)*1000+7),
		Cold:        cold,
		InitMS:      340.74,
		QueueMS:     1.5,
		DurationMS:  47.28,
		BilledMS:    48,
		MemoryMB:    128,
		MaxMemoryMB: 86,
		Status:      502,
		ErrorType:   "Runtime.OutOfMemory",
		InstanceID:  "i-abc",
		Method:      "POST",
		Path:        "/hello/world",
	}
}

func TestRecordRoundTrip(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	ctx := context.Background()
	want := rec("hello", 1, true)
	s.Add(want)
	flush(t, s)

	got, err := s.Record(ctx, want.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Start.Equal(want.Start) {
		t.Fatalf("Start = %v, want %v", got.Start, want.Start)
	}
	got.Start = want.Start
	if got != *want {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, *want)
	}
	if _, err := s.Record(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing record: err = %v, want ErrNotFound", err)
	}
}

// A cold start's init boost round-trips; a warm record reads as unboosted.
func TestRecordInitBoostRoundTrip(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	ctx := context.Background()
	boosted, warm := rec("hello", 1, true), rec("hello", 2, false)
	boosted.InitBoost = true
	s.Add(boosted)
	s.Add(warm)
	flush(t, s)

	for _, want := range []*record.Record{boosted, warm} {
		got, err := s.Record(ctx, want.RequestID)
		if err != nil {
			t.Fatal(err)
		}
		got.Start = want.Start
		if got != *want {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, *want)
		}
	}
	rs, err := s.Records(ctx, Query{Function: "hello", ColdOnly: true})
	if err != nil || len(rs) != 1 || !rs[0].InitBoost {
		t.Errorf("cold records: %+v %v", rs, err)
	}
}

func TestAddCopiesRecord(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	r := rec("hello", 1, false)
	s.Add(r)
	r.RequestID = "changed-after-add" // callers may reuse their record
	flush(t, s)
	if _, err := s.Record(context.Background(), "hello-0001"); err != nil {
		t.Fatal(err)
	}
}

func TestRecordsQuery(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	ctx := context.Background()
	for i := range 10 {
		s.Add(rec("a", i, i%3 == 0)) // cold: 0, 3, 6, 9
		s.Add(rec("b", i, false))
	}
	flush(t, s)

	all, err := s.Records(ctx, Query{})
	if err != nil || len(all) != 20 {
		t.Fatalf("all: %d records, %v", len(all), err)
	}
	a, _ := s.Records(ctx, Query{Function: "a"})
	if len(a) != 10 || a[0].RequestID != "a-0009" || a[9].RequestID != "a-0000" {
		t.Fatalf("function a newest first: got %d, first %q", len(a), a[0].RequestID)
	}
	cold, _ := s.Records(ctx, Query{Function: "a", ColdOnly: true})
	var ids []string
	for _, r := range cold {
		if !r.Cold {
			t.Fatalf("ColdOnly returned warm %s", r.RequestID)
		}
		ids = append(ids, r.RequestID)
	}
	if fmt.Sprint(ids) != "[a-0009 a-0006 a-0003 a-0000]" {
		t.Fatalf("cold records = %v", ids)
	}
	if cold, _ := s.Records(ctx, Query{Function: "b", ColdOnly: true}); len(cold) != 0 {
		t.Fatalf("b has no cold starts, got %d", len(cold))
	}
	lim, _ := s.Records(ctx, Query{Function: "b", Limit: 3})
	if len(lim) != 3 || lim[0].RequestID != "b-0009" {
		t.Fatalf("limit 3: %d, first %q", len(lim), lim[0].RequestID)
	}
	since, _ := s.Records(ctx, Query{Function: "a", Since: rec("a", 7, false).Start})
	if len(since) != 3 {
		t.Fatalf("since #7: got %d records, want 3", len(since))
	}
	// Paging back: the page before #7 starts at #6.
	page, _ := s.Records(ctx, Query{Function: "a", Before: rec("a", 7, false).Start, Limit: 3})
	if len(page) != 3 || page[0].RequestID != "a-0006" || page[2].RequestID != "a-0004" {
		t.Fatalf("before #7: %v", page)
	}
}

// Newest first is by start time, not by when the record was written: a
// long request that started first and finished last is listed after a
// short one that started later.
func TestRecordsNewestFirstByStart(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	long, short := rec("c", 1, false), rec("c", 2, false)
	long.RequestID, short.RequestID = "long", "short"
	long.DurationMS = 5000
	s.Add(short) // written first: it finished first
	s.Add(long)
	flush(t, s)
	got, err := s.Records(context.Background(), Query{Function: "c"})
	if err != nil || len(got) != 2 || got[0].RequestID != "short" || got[1].RequestID != "long" {
		t.Fatalf("newest first: %v %v", got, err)
	}
}

func TestFlushWritesEverythingAddedBefore(t *testing.T) {
	// A long flush interval and big batch: without Flush nothing would be
	// written for an hour.
	s := open(t, t.TempDir(), Options{FlushInterval: time.Hour, BatchSize: 1_000_000})
	ctx := context.Background()
	for i := range 1234 {
		s.Add(rec("f", i, false))
		s.AddLog(LogLine{Function: "f", Time: time.Now(), Stream: StreamStdout, Text: fmt.Sprint(i)})
	}
	if got, _ := s.Records(ctx, Query{}); len(got) != 0 {
		t.Fatalf("%d records written before the flush interval; the test premise is wrong", len(got))
	}
	flush(t, s)
	if got, _ := s.Records(ctx, Query{}); len(got) != 1234 {
		t.Fatalf("after Flush: %d records, want 1234", len(got))
	}
	if got, _ := s.Logs(ctx, "f", 0, 0); len(got) != 1234 {
		t.Fatalf("after Flush: %d log lines, want 1234", len(got))
	}
	// A Flush with nothing pending returns promptly.
	flush(t, s)
}

func TestBatchesWrittenWithoutFlush(t *testing.T) {
	s := open(t, t.TempDir(), Options{FlushInterval: 10 * time.Millisecond})
	s.Add(rec("f", 1, false))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, _ := s.Records(context.Background(), Query{}); len(got) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("record not written by the flush interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSurvivesRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "dir") // Open creates it
	ctx := context.Background()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Add(rec("hello", 1, true))
	s.AddLog(LogLine{Function: "hello", Time: time.Now(), Stream: StreamPlatform, Instance: "i1", Text: "START"})
	if err := s.PutVersion(ctx, Version{Function: "hello", Version: 1, Fingerprint: "fp1", Config: []byte(`{"memory":128}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutConfig(ctx, "/srv/stoke.yaml", []byte("functions: {}\n")); err != nil {
		t.Fatal(err)
	}
	// No Flush: Close must write what is queued.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Flush(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close: %v, want ErrClosed", err)
	}

	s = open(t, dir, Options{})
	if _, err := s.Record(ctx, "hello-0001"); err != nil {
		t.Fatalf("record lost over restart: %v", err)
	}
	logs, err := s.Logs(ctx, "hello", 0, 10)
	if err != nil || len(logs) != 1 || logs[0].Text != "START" || logs[0].Instance != "i1" {
		t.Fatalf("logs after restart: %+v, %v", logs, err)
	}
	vs, err := s.Versions(ctx)
	if err != nil || len(vs) != 1 || vs[0].Fingerprint != "fp1" || string(vs[0].Config) != `{"memory":128}` {
		t.Fatalf("versions after restart: %+v, %v", vs, err)
	}
	path, yaml, err := s.LastConfig(ctx)
	if err != nil || path != "/srv/stoke.yaml" || string(yaml) != "functions: {}\n" {
		t.Fatalf("config after restart: %q %q %v", path, yaml, err)
	}
	var uv int
	if err := s.db.QueryRow("PRAGMA user_version").Scan(&uv); err != nil || uv != len(migrations) {
		t.Fatalf("user_version = %d, %v; want %d", uv, err, len(migrations))
	}
	var mode string
	if err := s.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
}

func TestLastConfigEmpty(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	if _, _, err := s.LastConfig(context.Background()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	for i := range 30 {
		if err := s.PutConfig(context.Background(), fmt.Sprint(i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if p, _, _ := s.LastConfig(context.Background()); p != "29" {
		t.Fatalf("LastConfig path = %q, want 29", p)
	}
	var n int
	s.db.QueryRow("SELECT COUNT(*) FROM deployments").Scan(&n)
	if n != keptConfigs {
		t.Fatalf("%d configs kept, want %d", n, keptConfigs)
	}
}

func TestNextVersion(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	ctx := context.Background()
	step := func(fn, fp string, wantV int, wantChanged bool) {
		t.Helper()
		v, changed, err := s.NextVersion(ctx, fn, fp)
		if err != nil || v != wantV || changed != wantChanged {
			t.Fatalf("NextVersion(%s, %s) = %d, %v, %v; want %d, %v", fn, fp, v, changed, err, wantV, wantChanged)
		}
		if changed {
			if err := s.PutVersion(ctx, Version{Function: fn, Version: v, Fingerprint: fp}); err != nil {
				t.Fatal(err)
			}
		}
	}
	step("a", "x", 1, true)  // first deploy
	step("a", "x", 1, false) // same again
	step("a", "y", 2, true)  // changed
	step("a", "x", 3, true)  // changed back is still a new version
	step("b", "x", 1, true)  // functions are independent
	step("a", "x", 3, false)

	vs, err := s.Versions(ctx)
	if err != nil || len(vs) != 2 || vs[0].Function != "a" || vs[0].Version != 3 || vs[1].Function != "b" || vs[1].Version != 1 {
		t.Fatalf("Versions = %+v, %v", vs, err)
	}
	if vs[0].Created.IsZero() || time.Since(vs[0].Created) > time.Minute {
		t.Fatalf("Created = %v", vs[0].Created)
	}
}

func TestRetention(t *testing.T) {
	s := open(t, t.TempDir(), Options{MaxRecords: 10, MaxLogLines: 15, BatchSize: 7})
	ctx := context.Background()
	for i := range 25 {
		s.Add(rec("a", i, false))
		s.Add(rec("b", i, false))
	}
	for i := range 40 {
		s.AddLog(LogLine{Function: "a", Text: fmt.Sprint(i)})
	}
	s.AddLog(LogLine{Function: "c", Text: "only"})
	flush(t, s)

	for _, fn := range []string{"a", "b"} {
		got, _ := s.Records(ctx, Query{Function: fn})
		if len(got) != 10 || got[0].RequestID != fn+"-0024" || got[9].RequestID != fn+"-0015" {
			t.Fatalf("%s: kept %d records (newest %q), want the 10 newest", fn, len(got), got[0].RequestID)
		}
	}
	logs, _ := s.Logs(ctx, "a", 0, 0)
	// Lines are pruned a whole chunk (here at most 7 lines) at a time: the
	// newest are kept, at most 15, at least 15-6, without gaps.
	if len(logs) > 15 || len(logs) < 9 || logs[len(logs)-1].Text != "39" || logs[0].Text != strconv.Itoa(40-len(logs)) {
		t.Fatalf("kept %d log lines, first %q", len(logs), logs[0].Text)
	}
	if c, _ := s.Logs(ctx, "c", 0, 0); len(c) != 1 {
		t.Fatalf("function c lost its line: %d", len(c))
	}
}

func TestLogsFollowAndTail(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	ctx := context.Background()
	t0 := time.Unix(1700000000, 123456789)
	for i := range 5 {
		s.AddLog(LogLine{Function: "f", Time: t0.Add(time.Duration(i) * time.Second), Stream: StreamStderr, Instance: "i", Text: fmt.Sprint("line ", i)})
		s.AddLog(LogLine{Function: "g", Text: "other"})
	}
	flush(t, s)

	first, err := s.Logs(ctx, "f", 0, 3)
	if err != nil || len(first) != 3 || first[0].Text != "line 0" || first[2].Text != "line 2" {
		t.Fatalf("first page: %+v, %v", first, err)
	}
	if !first[1].Time.Equal(t0.Add(time.Second)) || first[1].Stream != StreamStderr || first[1].Function != "f" {
		t.Fatalf("line fields: %+v", first[1])
	}
	if !(first[0].Seq < first[1].Seq && first[1].Seq < first[2].Seq) {
		t.Fatalf("seqs not increasing: %d %d %d", first[0].Seq, first[1].Seq, first[2].Seq)
	}
	rest, _ := s.Logs(ctx, "f", first[2].Seq, 100)
	if len(rest) != 2 || rest[0].Text != "line 3" || rest[1].Text != "line 4" {
		t.Fatalf("follow from seq %d: %+v", first[2].Seq, rest)
	}
	if none, _ := s.Logs(ctx, "f", rest[1].Seq, 100); len(none) != 0 {
		t.Fatalf("nothing new expected, got %d", len(none))
	}
	tail, _ := s.TailLogs(ctx, "f", 2)
	if len(tail) != 2 || tail[0].Text != "line 3" || tail[1].Text != "line 4" {
		t.Fatalf("tail 2: %+v", tail)
	}
	if all, _ := s.TailLogs(ctx, "", 100); len(all) != 10 {
		t.Fatalf("tail of all functions: %d lines, want 10", len(all))
	}
}

// TestAddNeverBlocks holds SQLite's write lock from another connection, so
// the writer is stuck, and checks that Add keeps returning at once and
// counts what it drops.
func TestAddNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{QueueSize: 16, BatchSize: 8, FlushInterval: time.Millisecond})
	ctx := context.Background()

	other, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "stoke.db")+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() { once.Do(func() { lock.Rollback() }) }
	defer release()

	const n = 5000
	start := time.Now()
	for i := range n {
		s.Add(rec("f", i, false))
	}
	elapsed := time.Since(start)
	if elapsed > time.Second {
		t.Fatalf("%d Adds took %v while the writer was stuck", n, elapsed)
	}
	dropped := s.Dropped()
	if dropped == 0 {
		t.Fatal("queue of 16 took 5000 records with the writer stuck: nothing dropped")
	}

	release()
	flush(t, s)
	got, _ := s.Records(ctx, Query{})
	if int64(len(got))+dropped != n {
		t.Fatalf("written %d + dropped %d != added %d", len(got), dropped, n)
	}
	// The stuck writer held at most one batch, the queue at most 16 more.
	if len(got) == 0 || len(got) > 8+16+1 {
		t.Fatalf("%d records written; want 1..25 if the writer was really stuck", len(got))
	}
}

func TestConcurrentAdd(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	const goroutines, each = 16, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				s.Add(rec(fmt.Sprint("fn", g%4), g*each+i, i%2 == 0))
				s.AddLog(LogLine{Function: "x", Text: "y"})
			}
		})
	}
	wg.Wait()
	flush(t, s)
	got, err := s.Records(context.Background(), Query{})
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := s.Logs(context.Background(), "x", 0, 0)
	total := int64(len(got) + len(logs))
	if total+s.Dropped() != 2*goroutines*each || len(got) == 0 {
		t.Fatalf("written %d + dropped %d != %d", total, s.Dropped(), 2*goroutines*each)
	}
}

func BenchmarkAdd(b *testing.B) {
	s := open(b, b.TempDir(), Options{QueueSize: 1 << 16})
	r := rec("bench", 1, false)
	b.ReportAllocs()
	for b.Loop() {
		s.Add(r)
	}
	b.StopTimer()
	b.ReportMetric(float64(s.Dropped())/float64(b.N), "dropped/op")
}

func BenchmarkAddParallel(b *testing.B) {
	s := open(b, b.TempDir(), Options{QueueSize: 1 << 16})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := rec("bench", 1, false)
		for pb.Next() {
			s.Add(r)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(s.Dropped())/float64(b.N), "dropped/op")
}

// BenchmarkWriteRecords is the writer's cost per record: queued, batched and
// inserted (the traced fields included).
func BenchmarkWriteRecords(b *testing.B) {
	s := open(b, b.TempDir(), Options{QueueSize: 1 << 16})
	r := rec("bench", 1, true)
	traced(r, 1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Add(r)
		if i++; i%4096 == 0 {
			_ = s.Flush(context.Background())
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	if d := s.Dropped(); d > 0 {
		b.Fatalf("%d dropped", d)
	}
}

// traced stamps r with a trace, as the gateway does.
func traced(r *record.Record, seed byte) {
	for i := range r.TraceID {
		r.TraceID[i] = seed + byte(i)
	}
	r.GatewaySpan = [8]byte{0xff, 1, 2, 3, 4, 5, 6, seed} // the top bit set: stored as a negative integer
	r.InvokeSpan = [8]byte{7: seed}
	r.Sampled = true
	r.InvokeStart = r.Start.Add(1500 * time.Microsecond)
	r.End = r.InvokeStart.Add(47280 * time.Microsecond)
}

func TestTracedRecords(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	ctx := context.Background()
	plain := rec("f", 1, false)
	s.Add(plain)
	a, b := rec("f", 2, true), rec("f", 3, false)
	traced(a, 1)
	traced(b, 2)
	b.ParentSpan = [8]byte{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	b.InvokeStart = time.Time{} // no instance ran it
	s.Add(a)
	s.Add(b)
	flush(t, s)

	got, err := s.Trace(ctx, a.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if got.TraceID != a.TraceID || got.GatewaySpan != a.GatewaySpan || got.InvokeSpan != a.InvokeSpan || got.ParentSpan != ([8]byte{}) ||
		!got.Sampled || !got.InvokeStart.Equal(a.InvokeStart) || !got.End.Equal(a.End) || got.DurationMS != a.DurationMS {
		t.Errorf("traced record read back as %+v, wrote %+v", got, *a)
	}
	got, err = s.Trace(ctx, b.RequestID)
	if err != nil || got.ParentSpan != b.ParentSpan || !got.InvokeStart.IsZero() || !got.End.Equal(b.End) {
		t.Errorf("traced record without an instance: %+v %v", got, err)
	}
	if _, err := s.Trace(ctx, plain.RequestID); !errors.Is(err, ErrNotFound) {
		t.Errorf("an untraced record has a trace: %v", err)
	}
	if r, err := s.Record(ctx, plain.RequestID); err != nil || r.TraceID != ([16]byte{}) || !r.End.IsZero() || !r.InvokeStart.IsZero() {
		t.Errorf("untraced record: %+v %v", r, err)
	}
	ts, err := s.Traces(ctx, "f", 10)
	if err != nil || len(ts) != 2 || ts[0].RequestID != b.RequestID || ts[1].RequestID != a.RequestID {
		t.Errorf("traces of f: %v %v", ts, err)
	}
}

// A database from before traces lived on records keeps its records, which
// have no trace, and loses the traces table.
func TestMigrateTracesToRecords(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "stoke.db"))
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range migrations[:4] {
		if _, err := db.ExecContext(ctx, m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
	}
	if _, err := db.ExecContext(ctx, `PRAGMA user_version = 4;
		INSERT INTO records (request_id, function, version, start_ns, cold, init_ms, queue_ms, duration_ms, billed_ms,
			memory_mb, max_memory_mb, status, error_type, instance_id, method, path)
		VALUES ('old-1', 'f', '1', 1700000000000000000, 0, 0, 1, 2, 2, 128, 30, 200, '', 'i-1', 'GET', '/');
		INSERT INTO traces (request_id, trace_id, function, start_ns, data) VALUES ('old-1', 'x', 'f', 1, '{}')`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s := open(t, dir, Options{})
	r, err := s.Record(ctx, "old-1")
	if err != nil || r.Status != 200 || r.TraceID != ([16]byte{}) || !r.End.IsZero() || r.InitBoost {
		t.Fatalf("old record: %+v %v", r, err)
	}
	if _, err := s.Trace(ctx, "old-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old record's trace: %v", err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'traces%'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("traces table and indexes left: %d %v", n, err)
	}
}

// A batch of more records than one INSERT carries is written whole, each
// row with its own fields, whatever the split.
func TestRecordsBatchedInserts(t *testing.T) {
	for _, n := range []int{recordsPerInsert - 1, recordsPerInsert, 2*recordsPerInsert + 5} {
		s := open(t, t.TempDir(), Options{BatchSize: 500})
		for i := range n {
			r := rec("f", i, i%3 == 0)
			r.DurationMS = float64(i)
			traced(r, byte(i))
			s.Add(r)
		}
		flush(t, s)
		got, err := s.Records(context.Background(), Query{Function: "f"})
		if err != nil || len(got) != n {
			t.Fatalf("%d written: read %d, %v", n, len(got), err)
		}
		for k, r := range got {
			i := n - 1 - k // newest first
			if r.RequestID != fmt.Sprintf("f-%04d", i) || r.DurationMS != float64(i) || r.Cold != (i%3 == 0) || r.TraceID[0] != byte(i) {
				t.Fatalf("%d written: row %d read back as %+v", n, k, r)
			}
		}
	}
}

// Retention keeps the records that started last, as every reader orders
// them, even when they were written in another order.
func TestRetentionByStart(t *testing.T) {
	s := open(t, t.TempDir(), Options{MaxRecords: 10, BatchSize: 500})
	order := rand.New(rand.NewPCG(1, 2)).Perm(40)
	for _, i := range order {
		s.Add(rec("f", i, false))
	}
	flush(t, s)
	s.Add(rec("f", 40, false)) // grown past the limit again: pruned at this commit
	flush(t, s)
	got, _ := s.Records(context.Background(), Query{Function: "f"})
	if len(got) != 10 || got[0].RequestID != "f-0040" || got[9].RequestID != "f-0031" {
		var ids []string
		for _, r := range got {
			ids = append(ids, r.RequestID)
		}
		t.Fatalf("kept %v, want f-0040 … f-0031", ids)
	}
}

// Rows are written without a Flush: a lone row once FlushInterval has
// passed since it was added, a full batch at once.
func TestWriterWakes(t *testing.T) {
	ctx := context.Background()
	waitFor := func(s *Store, fn string, n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			got, err := s.Records(ctx, Query{Function: fn})
			if err == nil && len(got) == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d records written after 10 s (%v)", fn, len(got), n, err)
			}
		}
	}
	s := open(t, t.TempDir(), Options{FlushInterval: 20 * time.Millisecond})
	s.Add(rec("lone", 1, false))
	waitFor(s, "lone", 1)
	s.Add(rec("lone", 2, false)) // a second batch starts the same way
	waitFor(s, "lone", 2)

	s = open(t, t.TempDir(), Options{FlushInterval: time.Hour, BatchSize: 10})
	for i := range 25 {
		s.Add(rec("full", i, false))
	}
	waitFor(s, "full", 20) // two full batches; the other 5 wait for the hour
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(s, "full", 25)
}
