package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAsyncQueue(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	ctx := context.Background()
	now := time.Now()

	later, err := s.Enqueue(ctx, AsyncItem{Function: "f", Payload: []byte(`{"b":2}`), RequestID: "r-later", NextAttempt: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Enqueue(ctx, AsyncItem{Function: "f", Qualifier: "3", Version: "3", Payload: []byte(`{"a":1}`), RequestID: "r-1", TraceID: "Root=1-x"})
	if err != nil || first == later {
		t.Fatal(first, later, err)
	}
	if due, ok, err := s.NextDue(ctx); !ok || err != nil || due.After(time.Now()) {
		t.Fatalf("next due %v %v %v", due, ok, err)
	}

	it, ok, err := s.Claim(ctx, time.Now())
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	if it.ID != first || it.Status != AsyncRunning || it.Attempts != 1 || string(it.Payload) != `{"a":1}` ||
		it.Qualifier != "3" || it.Version != "3" || it.TraceID != "Root=1-x" || it.RequestID != "r-1" || it.AgeFrom.Before(now) {
		t.Fatalf("claimed %+v", it)
	}
	// Nothing else is due: the other one is an hour away.
	if _, ok, err := s.Claim(ctx, time.Now()); ok || err != nil {
		t.Fatalf("claimed an item not due: %v %v", ok, err)
	}
	// Due in a minute (the item an hour away stays not due at it): a
	// retry a few ms away came due before the next Claim on a loaded
	// machine.
	retry := time.Now().Add(time.Minute)
	if err := s.Complete(ctx, first, Completion{Error: "boom", RetryAt: retry}); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, first, Completion{OK: true}); !errors.Is(err, ErrNotFound) {
		t.Errorf("completing an item that is not running: %v", err)
	}
	if _, ok, _ := s.Claim(ctx, time.Now()); ok {
		t.Fatal("claimed before the retry was due")
	}
	it, ok, err = s.Claim(ctx, retry)
	if !ok || err != nil || it.ID != first || it.Attempts != 2 || it.LastError != "boom" {
		t.Fatalf("retry claim %+v %v %v", it, ok, err)
	}
	// A throttled try does not use an attempt.
	if err := s.Complete(ctx, first, Completion{Error: "throttled", RetryAt: retry, Throttled: true}); err != nil {
		t.Fatal(err)
	}
	it, ok, err = s.Claim(ctx, retry)
	if !ok || err != nil || it.Attempts != 2 || it.Throttles != 1 {
		t.Fatalf("after a throttle %+v %v %v", it, ok, err)
	}

	// A crash leaves it running; reopening and requeueing brings it back,
	// the attempt cut off not counted but said.
	s.Close()
	s = open(t, dir, Options{})
	if n, err := s.RequeueRunning(ctx); n != 1 || err != nil {
		t.Fatalf("requeued %d %v", n, err)
	}
	it, ok, err = s.Claim(ctx, time.Now())
	if !ok || err != nil || it.ID != first || it.Attempts != 2 || it.Interrupted != 1 {
		t.Fatalf("after restart %+v %v %v", it, ok, err)
	}
	if err := s.Complete(ctx, first, Completion{Error: "boom 3"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.AsyncByRequest(ctx, "r-1")
	if err != nil || got.Status != AsyncFailed || got.LastError != "boom 3" || got.Attempts != 2 {
		t.Fatalf("failed item %+v %v", got, err)
	}
	// Failed events are listed, and a retry by hand queues one again with
	// its attempts and age starting over; only a failed one.
	failed, err := s.ListAsync(ctx, "f", AsyncFailed, 10)
	if err != nil || len(failed) != 1 || failed[0].ID != first || string(failed[0].Payload) != `{"a":1}` {
		t.Fatalf("failed list %+v %v", failed, err)
	}
	if all, err := s.ListAsync(ctx, "f", "", 10); err != nil || len(all) != 2 || all[0].ID != first {
		t.Fatalf("list of all %+v %v", all, err)
	}
	if _, err := s.RetryFailed(ctx, "f", later); !errors.Is(err, ErrNotFailed) || !strings.Contains(err.Error(), "is queued") {
		t.Errorf("retrying a queued event: %v", err)
	}
	if _, err := s.RetryFailed(ctx, "g", first); !errors.Is(err, ErrNotFound) {
		t.Errorf("retrying another function's event: %v", err)
	}
	before := time.Now()
	again, err := s.RetryFailed(ctx, "f", first)
	if err != nil || again.Status != AsyncQueued || again.Attempts != 0 || again.AgeFrom.Before(before) || again.Created.After(before) {
		t.Fatalf("retried %+v %v", again, err)
	}
	it, ok, err = s.Claim(ctx, time.Now())
	if !ok || err != nil || it.ID != first || it.Attempts != 1 {
		t.Fatalf("claim after a retry by hand %+v %v %v", it, ok, err)
	}
	if err := s.Complete(ctx, first, Completion{Error: "boom 4"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AsyncByRequest(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing request: %v", err)
	}
	if n, err := s.PruneAsync(ctx, time.Now().Add(time.Second)); n != 1 || err != nil {
		t.Errorf("pruned %d %v, want the failed one only", n, err)
	}
	if _, err := s.AsyncByRequest(ctx, "r-later"); err != nil {
		t.Errorf("the queued item was pruned: %v", err)
	}
}

// Two workers claiming at once never get the same item.
func TestAsyncClaimExclusive(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	ctx := context.Background()
	const n = 50
	for range n {
		if _, err := s.Enqueue(ctx, AsyncItem{Function: "f", RequestID: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				it, ok, err := s.Claim(ctx, time.Now())
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					return
				}
				mu.Lock()
				if seen[it.ID] {
					t.Errorf("item %d claimed twice", it.ID)
				}
				seen[it.ID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("claimed %d of %d", len(seen), n)
	}
}
