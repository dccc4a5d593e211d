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
