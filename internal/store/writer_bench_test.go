package store

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stokehq/stoke/internal/record"
)

// BenchmarkWriteRecordsIDs is the writer's cost per record as the gateway
// sends them: every record its own request id, start times increasing, into
// a table already holding tens of thousands of rows. The request id index
// is what the id's kind changes: random ids (v4) land on random leaves, so
// each batch dirties (and writes to the WAL) a page per row; time-ordered
// ids (v7) append.
func BenchmarkWriteRecordsIDs(b *testing.B) {
	for _, kind := range []string{"v4", "v7", "v7-rowbyrow", "v7-batch64"} {
		b.Run(kind, func(b *testing.B) {
			if kind == "v7-rowbyrow" {
				defer func(n int) { recordsPerInsert = n }(recordsPerInsert)
				recordsPerInsert = 1
			}
			s := open(b, b.TempDir(), Options{QueueSize: 1 << 16})
			newID := uuid.NewString
			if kind != "v4" {
				newID = func() string { return uuid.Must(uuid.NewV7()).String() }
			}
			r := rec("bench", 1, false)
			traced(r, 1)
			t0 := time.Now()
			// Batches as large as the writer makes them (500), or of 64
			// rows: one a FlushInterval at ~1,300 requests/s.
			every := 4096
			if kind == "v7-batch64" {
				every = 64
			}
			add := func(i int) {
				r.RequestID = newID()
				r.Start = t0.Add(time.Duration(i) * time.Microsecond)
				s.Add(r)
				if i%every == 0 {
					_ = s.Flush(context.Background())
				}
			}
			measureAdds(b, s, 50_000, add)
		})
	}
}

// cpuTime is the CPU this process has used (user + system): on a shared
// machine a benchmark's wall time includes waiting for the CPUs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWriteRequests is the writer's cost per warm request as the
// server queues it: four log lines (START, a line of the app's, END,
// REPORT) and the record, in batches of BatchSize rows (the writer's size
// under load), into tables already at their limits, so that pruning is
// part of the cost as it is in a long-running stoke.
func BenchmarkWriteRequests(b *testing.B) {
	s := open(b, b.TempDir(), Options{MaxRecords: 20_000, MaxLogLines: 80_000, QueueSize: 1 << 16})
	r := rec("bench", 1, false)
	traced(r, 1)
	r.ErrorType, r.Status = "", 200
	r.InstanceID = "i-" + uuid.NewString()[:8]
	t0 := time.Now()
	line := func(stream, text string) LogLine {
		return LogLine{Function: r.Function, Time: r.Start, Stream: stream, Instance: r.InstanceID, Text: text}
	}
	add := func(i int) {
		r.RequestID = uuid.Must(uuid.NewV7()).String()
		r.Start = t0.Add(time.Duration(i) * time.Microsecond)
		s.AddLog(line(StreamPlatform, record.StartLine(r)))
		s.AddLog(line(StreamStdout, `{"level":"info","msg":"GET /hello/world 200","took_ms":0.412}`))
		s.AddLog(line(StreamPlatform, record.EndLine(r)))
		s.AddLog(line(StreamPlatform, record.ReportLine(r)))
		s.Add(r)
		if i%100 == 0 { // 500 rows
			_ = s.Flush(context.Background())
		}
	}
	measureAdds(b, s, 30_000, add)
}

// measureAdds calls add for fill rows first (the tables a long-running
// stoke has), then measures it, CPU per op included, until everything is
// written.
func measureAdds(b *testing.B, s *Store, fill int, add func(i int)) {
	for i := range fill {
		add(i)
	}
	_ = s.Flush(context.Background())
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	i := fill
	for b.Loop() {
		i++
		add(i)
	}
	if err := s.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	if d := s.Dropped(); d > 0 {
		b.Fatalf("%d dropped", d)
	}
}
