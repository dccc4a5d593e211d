package store

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Lines round-trip through a chunk whatever they hold: empty fields, tabs,
// quotes, newlines inside, invalid UTF-8, long text, times before 1970.
func TestChunkRoundTrip(t *testing.T) {
	in := []LogLine{
		{Time: time.Unix(1700000000, 123456789), Stream: StreamPlatform, Instance: "i-1", Text: "REPORT RequestId: x\tDuration: 1.00 ms\t"},
		{Time: time.Unix(0, -5), Stream: StreamStdout, Text: ""},
		{Time: time.Unix(1, 0), Stream: StreamStderr, Instance: "i-2", Text: "\"quoted\" \\ é \xff\x00 line\nwith a newline"},
		{Time: time.Unix(2, 0), Stream: StreamStdout, Instance: "i-2", Text: strings.Repeat("x", 3000)},
	}
	var ptrs []*LogLine
	for i := range in {
		ptrs = append(ptrs, &in[i])
	}
	data, err := appendChunk(nil, ptrs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeChunk(7, "f", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("%d lines back, want %d", len(got), len(in))
	}
	for i, g := range got {
		w := in[i]
		if g.Seq != 7<<seqShift|int64(i) || g.Function != "f" || !g.Time.Equal(w.Time) || g.Stream != w.Stream || g.Instance != w.Instance || g.Text != w.Text {
			t.Errorf("line %d: got %+v, want %+v", i, g, w)
		}
	}
	// Cut anywhere but at a line's end, the data is refused, not misread.
	ends := map[int]bool{1: true} // no lines
	for i := range ptrs {
		b, _ := appendChunk(nil, ptrs[:i+1])
		ends[len(b)] = true
	}
	for n := 1; n < len(data); n++ {
		if ends[n] {
			continue
		}
		if lines, err := decodeChunk(7, "f", data[:n]); err == nil {
			t.Fatalf("data cut at %d of %d read as %d lines, no error", n, len(data), len(lines))
		}
	}
}

// Chunks written as JSON (before the binary encoding) are still read, in
// order with binary ones, by Logs and TailLogs.
func TestJSONChunksStillRead(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	ctx := context.Background()
	old, _ := json.Marshal([]chunkLine{{T: 1700000000_000000001, S: StreamStdout, I: "i-1", X: "old \"one\""}, {T: 1700000000_000000002, S: StreamPlatform, X: "old two"}})
	if _, err := s.db.ExecContext(ctx, `INSERT INTO log_chunks (function, lines, data) VALUES ('f', 2, ?)`, old); err != nil {
		t.Fatal(err)
	}
	s.AddLog(LogLine{Function: "f", Time: time.Unix(1700000001, 0), Stream: StreamStderr, Instance: "i-2", Text: "new"})
	flush(t, s)
	for name, read := range map[string]func() ([]LogLine, error){
		"Logs":     func() ([]LogLine, error) { return s.Logs(ctx, "f", 0, 0) },
		"TailLogs": func() ([]LogLine, error) { return s.TailLogs(ctx, "f", 10) },
	} {
		got, err := read()
		if err != nil {
			t.Fatal(name, err)
		}
		var texts []string
		for _, l := range got {
			texts = append(texts, l.Stream+"/"+l.Instance+"/"+l.Text)
		}
		if want := `stdout/i-1/old "one"|platform//old two|stderr/i-2/new`; strings.Join(texts, "|") != want {
			t.Errorf("%s: %q, want %q", name, strings.Join(texts, "|"), want)
		}
		if len(got) == 3 && (got[0].Time.UnixNano() != 1700000000_000000001 || got[1].Seq != got[0].Seq+1 || got[2].Seq <= got[1].Seq) {
			t.Errorf("%s: times or seqs wrong: %+v", name, got)
		}
	}
}
