package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/store"
)

// localEvents lists a function's Event invocations this node keeps
// (stoke events; in a cluster, its part of the view, views.go: the
// outcomes it stored and the events it is running now).
func (s *Server) localEvents(ctx context.Context, function, status string, limit int) ([]admin.EventInfo, error) {
	its, err := s.st.ListAsync(ctx, function, status, limit)
	if err != nil {
		return nil, err
	}
	if s.events != nil && (status == "" || status == store.AsyncRunning) {
		for _, it := range s.events.Running(function) {
			it.ID = 0 // the queue's own number, not one `stoke events retry` takes
			its = append(its, it)
		}
	}
	out := make([]admin.EventInfo, 0, len(its))
	for _, it := range its {
		out = append(out, eventInfo(it))
	}
	return out, nil
}

// RetryEvent queues a failed event again and wakes the workers.
func (s *Server) RetryEvent(ctx context.Context, function string, id int64) (admin.EventInfo, error) {
	it, err := s.st.RetryFailed(ctx, function, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return admin.EventInfo{}, fmt.Errorf("%w: %w", admin.ErrNotFound, err)
	case errors.Is(err, store.ErrNotFailed):
		return admin.EventInfo{}, fmt.Errorf("%w: %w", admin.ErrNotFailed, err)
	case err != nil:
		return admin.EventInfo{}, err
	}
	if s.events != nil {
		// In a cluster the queue is JetStream's: the event goes there, and
		// any node runs it.
		if err := s.events.Requeue(ctx, it); err != nil {
			return admin.EventInfo{}, err
		}
		if err := s.st.ForgetAsync(ctx, it.ID); err != nil {
			s.log.Warn("forgetting an event queued again in the cluster", "id", it.ID, "err", err)
		}
	}
	s.log.Info("failed event queued again by hand", "function", function, "id", id, "request_id", it.RequestID)
	s.invoke.Wake()
	return eventInfo(it), nil
}

func eventInfo(it store.AsyncItem) admin.EventInfo {
	ev := admin.EventInfo{
		ID: it.ID, RequestID: it.RequestID, Function: it.Function, Qualifier: it.Qualifier, Version: it.Version,
		Status: it.Status, Attempts: it.Attempts, Throttles: it.Throttles, Interrupted: it.Interrupted,
		LastError: it.LastError, Payload: it.Payload, Accepted: it.Created, Updated: it.Updated,
	}
	if !json.Valid(it.Payload) { // accepted payloads are JSON; say what is there all the same
		ev.Payload, _ = json.Marshal(string(it.Payload))
	}
	if it.Status == store.AsyncQueued {
		ev.NextAttempt = it.NextAttempt
	}
	return ev
}
