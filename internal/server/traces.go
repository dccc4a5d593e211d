package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/stokehq/stoke/internal/store"
	"github.com/stokehq/stoke/internal/trace"
)

// Trace and Traces serve the admin API's traces from the store: an
// invocation's record carries its trace, and the spans are rebuilt from it.
// In a cluster a request's record is on the node it reached, so a trace
// not found here is asked of every node, and a function's latest traces
// are every node's, merged (the views' fan-out).
func (s *Server) Trace(ctx context.Context, requestID string) (*trace.Trace, error) {
	t, err := s.localTrace(ctx, requestID)
	if s.node == nil || !errors.Is(err, store.ErrNotFound) {
		return t, err
	}
	answers, _, gerr := s.node.Gather(ctx, "trace", requestID)
	if gerr != nil {
		return nil, fmt.Errorf("%w (asking the other nodes: %v)", err, gerr)
	}
	for _, a := range answers {
		if a.Node == s.node.Name() || string(a.Data) == "null" {
			continue
		}
		var t trace.Trace
		if err := json.Unmarshal(a.Data, &t); err != nil {
			return nil, fmt.Errorf("node %s's trace: %w", a.Node, err)
		}
		return &t, nil
	}
	return nil, err
}

// tracesArg asks a node for a function's latest traces.
type tracesArg struct {
	Function string `json:"function"`
	Limit    int    `json:"limit"`
}

// Traces are function's latest traces, newest first; in a cluster,
// every node's.
func (s *Server) Traces(ctx context.Context, function string, limit int) ([]trace.Trace, error) {
	if s.node == nil {
		return s.localTraces(ctx, function, limit)
	}
	byNode, err := gather[[]trace.Trace](ctx, s, "traces", tracesArg{Function: function, Limit: limit})
	if err != nil {
		return nil, err
	}
	var out []trace.Trace
	for _, ts := range byNode {
		out = append(out, ts...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.After(out[j].Start) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// localTrace is a request's trace from this node: an answer of its
// response caches, or an invocation it recorded.
func (s *Server) localTrace(ctx context.Context, requestID string) (*trace.Trace, error) {
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

func (s *Server) localTraces(ctx context.Context, function string, limit int) ([]trace.Trace, error) {
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
