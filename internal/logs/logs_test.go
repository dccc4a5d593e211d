package logs

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/store"
)

func newStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func recv(t *testing.T, ch <-chan store.LogLine) store.LogLine {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatal("channel closed")
		}
		return l
	case <-time.After(5 * time.Second):
		t.Fatal("no line delivered")
	}
	panic("unreachable")
}

func TestPersistedAndDeliveredInOrder(t *testing.T) {
	st := newStore(t)
	h := New(st)
	var echo bytes.Buffer
	h.Echo = &echo
	fnCh, cancelFn := h.Subscribe("hello")
	defer cancelFn()
	allCh, cancelAll := h.Subscribe("")
	defer cancelAll()

	before := time.Now()
	h.Write("hello", "i1", store.StreamPlatform, "START RequestId: r1 Version: $LATEST")
	h.Write("other", "i9", store.StreamStdout, "not for hello")
	h.Write("hello", "i1", store.StreamStdout, "hi there\n")
	h.Write("hello", "i1", store.StreamStderr, "oops")

	want := []string{"START RequestId: r1 Version: $LATEST", "hi there", "oops"}
	for i, w := range want {
		l := recv(t, fnCh)
		if l.Text != w || l.Function != "hello" || l.Instance != "i1" {
			t.Fatalf("live line %d = %+v, want text %q", i, l, w)
		}
		if l.Time.Before(before) || time.Since(l.Time) > time.Minute {
			t.Fatalf("line %d not timestamped now: %v", i, l.Time)
		}
	}
	select {
	case l := <-fnCh:
		t.Fatalf("hello follower got another function's line: %+v", l)
	case <-time.After(20 * time.Millisecond):
	}
	for _, w := range []string{want[0], "not for hello", want[1], want[2]} {
		if l := recv(t, allCh); l.Text != w {
			t.Fatalf("all-functions follower got %q, want %q", l.Text, w)
		}
	}

	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	stored, err := st.Logs(context.Background(), "hello", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 3 {
		t.Fatalf("stored %d lines, want 3", len(stored))
	}
	streams := []string{store.StreamPlatform, store.StreamStdout, store.StreamStderr}
	for i, l := range stored {
		if l.Text != want[i] || l.Stream != streams[i] || l.Seq == 0 {
			t.Fatalf("stored line %d = %+v", i, l)
		}
	}

	wantEcho := "[hello] START RequestId: r1 Version: $LATEST\n[other] not for hello\n[hello] hi there\n[hello] oops\n"
	if echo.String() != wantEcho {
		t.Fatalf("echo:\n%q\nwant\n%q", echo.String(), wantEcho)
	}
}

// TestBlockedSubscriberDoesNotBlockWrite never reads from one subscriber
// while lines are written, then checks Write kept going, other followers and
// the store got everything, and the stuck follower is told what it missed.
func TestBlockedSubscriberDoesNotBlockWrite(t *testing.T) {
	st := newStore(t)
	h := New(st)
	stuck, cancelStuck := h.Subscribe("f")
	defer cancelStuck()

	// A live follower draining concurrently must see every line, in order.
	live, cancelLive := h.Subscribe("f")
	var got []string
	var wg sync.WaitGroup
	wg.Go(func() {
		for l := range live {
			got = append(got, l.Text)
		}
	})

	const n = subBuffer * 4
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			h.Write("f", "i", store.StreamStdout, fmt.Sprint(i))
			for i%64 == 0 && len(live) > 0 {
				time.Sleep(100 * time.Microsecond) // let the live follower keep up
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Write blocked on a subscriber that never reads")
	}
	cancelLive()
	wg.Wait()
	if len(got) != n {
		t.Fatalf("live follower got %d lines, want %d", len(got), n)
	}
	for i, text := range got {
		if text != fmt.Sprint(i) {
			t.Fatalf("live line %d = %q: out of order", i, text)
		}
	}

	// The stuck follower has its buffer's worth, oldest first.
	for i := range subBuffer {
		if l := recv(t, stuck); l.Text != fmt.Sprint(i) {
			t.Fatalf("stuck follower line %d = %q", i, l.Text)
		}
	}
	// With room again, the next line is preceded by the count of missed ones.
	h.Write("f", "i", store.StreamStdout, "after")
	marker := recv(t, stuck)
	m := regexp.MustCompile(`^\[stoke\] (\d+) log lines dropped`).FindStringSubmatch(marker.Text)
	if m == nil || marker.Stream != store.StreamPlatform {
		t.Fatalf("expected a dropped-lines marker, got %+v", marker)
	}
	if m[1] != fmt.Sprint(n-subBuffer) {
		t.Fatalf("marker says %s dropped, want %d", m[1], n-subBuffer)
	}
	if l := recv(t, stuck); l.Text != "after" {
		t.Fatalf("after the marker got %q, want \"after\"", l.Text)
	}

	// Nothing was lost on the way to the store.
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	stored, err := st.Logs(context.Background(), "f", 0, 0)
	if err != nil || len(stored) != n+1 {
		t.Fatalf("stored %d lines, want %d (%v)", len(stored), n+1, err)
	}
}

func TestCancelClosesAndStopsDelivery(t *testing.T) {
	h := New(nil)
	ch, cancel := h.Subscribe("f")
	cancel()
	cancel() // idempotent
	if _, ok := <-ch; ok {
		t.Fatal("channel still open after cancel")
	}
	h.Write("f", "i", store.StreamStdout, "no panic on a cancelled subscriber")
}
