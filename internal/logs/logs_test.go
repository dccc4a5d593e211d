package logs

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/store"
)

func TestPersistedInOrderAndEchoed(t *testing.T) {
	st, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := New(st)
	var echo bytes.Buffer
	h.Echo = &echo

	before := time.Now()
	h.Write("hello", "i1", store.StreamPlatform, "START RequestId: r1 Version: $LATEST")
	h.Write("other", "i9", store.StreamStdout, "not for hello")
	h.Write("hello", "i1", store.StreamStdout, "hi there\n")
	h.Write("hello", "i1", store.StreamStderr, "oops")

	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	stored, err := st.Logs(context.Background(), "hello", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"START RequestId: r1 Version: $LATEST", "hi there", "oops"}
	streams := []string{store.StreamPlatform, store.StreamStdout, store.StreamStderr}
	if len(stored) != len(want) {
		t.Fatalf("stored %d lines, want %d", len(stored), len(want))
	}
	for i, l := range stored {
		if l.Text != want[i] || l.Stream != streams[i] || l.Seq == 0 || l.Instance != "i1" {
			t.Fatalf("stored line %d = %+v", i, l)
		}
		if l.Time.Before(before.Truncate(time.Millisecond)) || time.Since(l.Time) > time.Minute {
			t.Fatalf("line %d not timestamped now: %v", i, l.Time)
		}
		if i > 0 && l.Seq <= stored[i-1].Seq {
			t.Fatalf("line %d seq %d after %d: a follower's cursor would skip or repeat", i, l.Seq, stored[i-1].Seq)
		}
	}

	wantEcho := "[hello] START RequestId: r1 Version: $LATEST\n[other] not for hello\n[hello] hi there\n[hello] oops\n"
	if echo.String() != wantEcho {
		t.Fatalf("echo:\n%q\nwant\n%q", echo.String(), wantEcho)
	}
}
