package server

import (
	"context"

	"github.com/stokehq/stoke/internal/trace"
)

// Trace and Traces serve the admin API's traces from the store: an
// invocation's record carries its trace, and the spans are rebuilt from it.
func (s *Server) Trace(ctx context.Context, requestID string) (*trace.Trace, error) {
	if rec, ok := s.caches.hits.find(requestID); ok {
		// A request a response cache answered: kept in memory a while.
		t := trace.FromRecord(&rec)
		return &t, nil
	}
	rec, err := s.st.Trace(ctx, requestID)
	if err != nil {
		return nil, err
	}
	t := trace.FromRecord(&rec)
	return &t, nil
}

func (s *Server) Traces(ctx context.Context, function string, limit int) ([]trace.Trace, error) {
	recs, err := s.st.Traces(ctx, function, limit)
	if err != nil {
		return nil, err
	}
	out := make([]trace.Trace, len(recs))
	for i := range recs {
		out[i] = trace.FromRecord(&recs[i])
	}
	return out, nil
}

// FlushTraces waits until the records (so the traces) of invocations that
// ended before it are stored and their spans exported (for tests and tools
// that read right after a request).
func (s *Server) FlushTraces(ctx context.Context) error { return s.trace.Flush(ctx) }
