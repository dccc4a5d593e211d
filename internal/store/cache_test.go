package store

import (
	"context"
	"testing"
)

// What the response cache did before an invocation round-trips.
func TestRecordCacheRoundTrip(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	r := rec("hello", 1, false)
	r.Cache, r.CacheMS = "stale", 0.125
	s.Add(r)
	flush(t, s)
	got, err := s.Record(context.Background(), r.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	got.Start = r.Start
	if got != *r {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, *r)
	}
}
