package trace

import (
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/record"
)

// A request the cache answered is a gateway span and a cache span; an
// invocation through the cache has the cache span before the queue.
func TestCacheSpan(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tc := NewContext()

	hit := &record.Record{RequestID: "h", Function: "f", Start: start, End: start.Add(80 * time.Microsecond),
		Status: 200, Cache: "hit", CacheMS: 0.08, FromCache: true}
	tc.Stamp(hit)
	tr := FromRecord(hit)
	if len(tr.Spans) != 2 || tr.Spans[1].Name != SpanCache || tr.Spans[1].Attributes["stoke.cache"] != "hit" || !tr.Spans[1].End.Equal(hit.End) {
		t.Fatalf("hit spans %+v", tr.Spans)
	}

	miss := &record.Record{RequestID: "m", Function: "f", Start: start, Status: 200, Cache: "uri-miss", CacheMS: 1,
		QueueMS: 2, DurationMS: 3, InstanceID: "i", InvokeStart: start.Add(3 * time.Millisecond), End: start.Add(6 * time.Millisecond)}
	tc.Stamp(miss)
	tr = FromRecord(miss)
	names := []string{}
	for _, s := range tr.Spans {
		names = append(names, s.Name)
	}
	if strings.Join(names, " ") != "gateway cache queue invoke" {
		t.Fatalf("miss spans %q", names)
	}
	cache, queue := tr.Spans[1], tr.Spans[2]
	if !cache.End.Equal(start.Add(time.Millisecond)) || !queue.Start.Equal(cache.End) || !queue.End.Equal(start.Add(3*time.Millisecond)) {
		t.Fatalf("cache %v–%v, queue %v–%v", cache.Start, cache.End, queue.Start, queue.End)
	}
	var b strings.Builder
	if err := Waterfall(&b, &tr, 20); err != nil || !strings.Contains(b.String(), "(uri-miss)") {
		t.Fatalf("waterfall %q %v", b.String(), err)
	}
}

// An init longer than the request's wait for it (a python spare did its
// after-fork work before the request came) is drawn from the queue's start;
// the whole init is an attribute.
func TestInitBeforeTheRequest(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tc := NewContext()
	rec := &record.Record{RequestID: "c", Function: "f", Start: start, Status: 200, Cold: true, InitMS: 9.5,
		QueueMS: 0.5, DurationMS: 3, InstanceID: "i", InvokeStart: start.Add(500 * time.Microsecond), End: start.Add(4 * time.Millisecond)}
	tc.Stamp(rec)
	tr := FromRecord(rec)
	var init *Span
	for i, s := range tr.Spans {
		if s.Name == SpanInit {
			init = &tr.Spans[i]
		}
	}
	if init == nil || !init.Start.Equal(start) || !init.End.Equal(start.Add(500*time.Microsecond)) || init.Attributes["stoke.init_ms"] != 9.5 {
		t.Fatalf("init span %+v", init)
	}
	// One within the wait is drawn as it is, without the attribute.
	rec.RequestID, rec.InitMS, rec.QueueMS = "d", 0.4, 0.5
	tc.Stamp(rec)
	for _, s := range FromRecord(rec).Spans {
		if s.Name == SpanInit && (!s.Start.Equal(start.Add(100*time.Microsecond)) || s.Attributes["stoke.init_ms"] != nil) {
			t.Fatalf("init span %+v", s)
		}
	}
}
