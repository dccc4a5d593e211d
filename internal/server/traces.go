package server

import (
	"context"

	"github.com/stokehq/stoke/internal/trace"
)

// Trace and Traces serve the admin API's traces from the store, where the
// Tracer keeps what they are rebuilt from.
func (s *Server) Trace(ctx context.Context, requestID string) (*trace.Trace, error) {
	row, err := s.st.Trace(ctx, requestID)
	if err != nil {
		return nil, err
	}
	return trace.Decode(row.Data)
}

func (s *Server) Traces(ctx context.Context, function string, limit int) ([]trace.Trace, error) {
	rows, err := s.st.Traces(ctx, function, limit)
	if err != nil {
		return nil, err
	}
	out := make([]trace.Trace, len(rows))
	for i, row := range rows {
		t, err := trace.Decode(row.Data)
		if err != nil {
			return nil, err
		}
		out[i] = *t
	}
	return out, nil
}

// FlushTraces waits until the traces of invocations that ended before it
// are stored and exported (for tests and tools that read right after a request).
func (s *Server) FlushTraces(ctx context.Context) error { return s.trace.Flush(ctx) }
