package invokeapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stokehq/stoke/internal/lambdaspec"
	"github.com/stokehq/stoke/internal/store"
)

// idleCheck bounds how long an idle worker sleeps without looking at the
// queue: another process may have queued work, and a clock jump may have
// made work due.
const idleCheck = 5 * time.Second

// enqueue saves an Event invocation, with the version it was accepted for;
// once it returns nil the event survives a crash.
func (a *API) enqueue(ctx context.Context, t lambdaspec.FunctionRef, reqID, traceID string, payload []byte) *apiError {
	if a.o.Store == nil {
		return &apiError{status: http.StatusInternalServerError, typ: "ServiceException", msg: "Event invocations need a store", body: bodyService}
	}
	version, _ := a.b.Lookup(t.Name)
	_, err := a.o.Store.Enqueue(ctx, store.AsyncItem{
		Function: t.Name, Qualifier: t.Qualifier, Version: version, Payload: payload, RequestID: reqID, TraceID: traceID,
	})
	if err != nil {
		a.log.Error("could not queue an Event invocation", "function", t.Name, "request_id", reqID, "err", err)
		return &apiError{status: http.StatusInternalServerError, typ: "ServiceException", msg: "could not queue the event: " + err.Error(), body: bodyService}
	}
	a.Wake()
	return nil
}

// EventConfig is a function's settings for Event invocations (Lambda's
// EventInvokeConfig).
type EventConfig struct {
	MaxRetryAttempts int           // 0–2
	MaxEventAge      time.Duration // 60 s–6 h
}

// EventConfigs is a Backend that knows each function's EventConfig; with
// a Backend that does not, every function has Lambda's defaults.
type EventConfigs interface {
	EventConfig(name string) (EventConfig, bool)
}

func (a *API) eventConfig(name string) EventConfig {
	if ec, ok := a.b.(EventConfigs); ok {
		if c, ok := ec.EventConfig(name); ok {
			return c
		}
	}
	return EventConfig{MaxRetryAttempts: lambdaspec.MaxRetryAttempts, MaxEventAge: lambdaspec.MaxEventAge}
}

// Wake makes an idle worker look at the queue now (an event was queued
// again by hand).
func (a *API) Wake() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Start requeues Event invocations a crash left running and starts the
// workers. ctx bounds the workers' lives as Close does.
func (a *API) Start(ctx context.Context) {
	if a.o.Store == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stop != nil {
		return
	}
	if n, err := a.o.Store.RequeueRunning(ctx); err != nil {
		a.log.Error("requeue interrupted events", "err", err)
	} else if n > 0 {
		a.log.Info("requeued events interrupted by a restart", "count", n)
	}
	loop, stop := context.WithCancel(ctx)
	// Invocations in flight outlive stop, so Close lets them finish; hard
	// cancels them when Close's own deadline passes.
	run, hard := context.WithCancel(context.WithoutCancel(ctx))
	a.stop, a.hard = stop, hard
	for range a.o.Workers {
		a.workers.Go(func() { a.work(loop, run) })
	}
}

// Close stops the workers. Invocations in flight finish unless ctx ends
// first; those cut off stay "running" and are retried after the next Start.
func (a *API) Close(ctx context.Context) error {
	a.mu.Lock()
	stop, hard := a.stop, a.hard
	a.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	done := make(chan struct{})
	go func() { a.workers.Wait(); close(done) }()
	select {
	case <-done:
		hard()
		return nil
	case <-ctx.Done():
		hard()
		<-done
		return fmt.Errorf("invokeapi: close: events in flight cut off: %w", ctx.Err())
	}
}

// work claims due events until loop ends.
func (a *API) work(loop, run context.Context) {
	st := a.o.Store
	for loop.Err() == nil {
		it, ok, err := st.Claim(loop, time.Now())
		if err != nil {
			if loop.Err() == nil {
				a.log.Error("claim event", "err", err)
			}
			a.sleep(loop, time.Now().Add(time.Second))
			continue
		}
		if !ok {
			due, ok, err := st.NextDue(loop)
			if err != nil || !ok || time.Until(due) > idleCheck {
				due = time.Now().Add(idleCheck)
			}
			a.sleep(loop, due)
			continue
		}
		a.attempt(run, it)
	}
}

// sleep waits until t, an enqueue, or loop's end.
func (a *API) sleep(loop context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-a.wake:
	case <-loop.Done():
	}
}

// attempt runs one attempt of an Event invocation and records how it went,
// as Lambda handles asynchronous invocations:
//   - succeeded;
//   - throttled (no instance took it): tried again after a backoff
//     doubling from 1 s to 5 min, without using an attempt;
//   - failed (a function error, a timeout, an exit, an init failure):
//     queued for a retry after the next delay (1 min, then 2 min) while
//     its function's maximum_retry_attempts allow;
//   - else failed for good, kept with its payload, error and attempts (the
//     on-failure destination: stoke events FN --failed), as is one older
//     than maximum_event_age or whose function was removed.
//
// An event runs on the function's current version ($LATEST semantics:
// Stoke keeps one version per function, so one accepted for a version a
// deploy has since replaced runs on its successor; its record says which).
// Each attempt is also a normal record (through Run), under the same
// request id, as Lambda keeps it across retries.
func (a *API) attempt(run context.Context, it store.AsyncItem) {
	log := a.log.With("request_id", it.RequestID, "function", it.Function, "attempt", it.Attempts)
	cfg := a.eventConfig(it.Function)
	var c store.Completion
	now := time.Now()
	current, exists := a.b.Lookup(it.Function)
	switch {
	case !exists:
		c.Error = "ResourceNotFoundException: Function not found: " + lambdaspec.FunctionRef{Name: it.Function}.ARN(a.o.Region, a.o.AccountID) +
			" (removed after the event was accepted)"
	case now.Sub(it.AgeFrom) > cfg.MaxEventAge:
		c.Error = fmt.Sprintf("EventAgeExceeded: the event is %s old, past its function's maximum_event_age of %s (last error: %s)",
			now.Sub(it.AgeFrom).Round(time.Millisecond), cfg.MaxEventAge, orNone(it.LastError))
	default:
		t := lambdaspec.FunctionRef{Name: it.Function, Qualifier: it.Qualifier}
		if t.Qualifier != "" && t.Qualifier != "$LATEST" && t.Qualifier != current {
			t.Qualifier = "" // that version was replaced: its successor runs it
		}
		res, e := a.invoke(run, call{
			t: t, arn: t.ARN(a.o.Region, a.o.AccountID), reqID: it.RequestID, payload: it.Payload, traceID: it.TraceID,
			path: "/2015-03-31/functions/" + it.Function + "/invocations",
		})
		switch {
		case run.Err() != nil:
			// Close cut it off: leave it running so the next Start retries it.
			log.Warn("event cut off by shutdown")
			return
		case e != nil && e.notRun:
			c.Error, c.Throttled = e.typ+": "+e.msg, true
		case e != nil:
			c.Error = e.typ + ": " + e.msg
		case res.functionError != "":
			typ := res.errorType
			if typ == "" {
				typ = res.functionError
			}
			c.Error = typ + ": " + string(res.payload)
		}
	}
	c.Error = truncate(c.Error, 4096) // the payload of a function error can be megabytes
	c.OK = c.Error == ""
	switch {
	case c.OK:
	case c.Throttled:
		d := a.o.ThrottleBackoff[0] << min(it.Throttles, 30)
		if d <= 0 || d > a.o.ThrottleBackoff[1] {
			d = a.o.ThrottleBackoff[1]
		}
		c.RetryAt = now.Add(d)
	case exists && it.Attempts <= cfg.MaxRetryAttempts && !strings.HasPrefix(c.Error, "EventAgeExceeded"):
		d := a.o.RetryDelays[min(it.Attempts, len(a.o.RetryDelays))-1]
		c.RetryAt = now.Add(d)
	}
	if !c.RetryAt.IsZero() && c.RetryAt.Sub(it.AgeFrom) > cfg.MaxEventAge {
		// It would be too old by then: give up now, saying why.
		c.Error += fmt.Sprintf(" (not retried: it would pass its function's maximum_event_age of %s first)", cfg.MaxEventAge)
		c.RetryAt, c.Throttled = time.Time{}, false
	}
	// The outcome must be saved even as the server shuts down.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(run), 10*time.Second)
	defer cancel()
	if err := a.o.Store.Complete(ctx, it.ID, c); err != nil && !errors.Is(err, store.ErrClosed) {
		log.Error("record event outcome", "err", err)
	}
	switch {
	case c.OK:
		log.Debug("event succeeded")
	case c.Throttled:
		log.Info("event throttled, will retry", "at", c.RetryAt, "err", c.Error)
	case !c.RetryAt.IsZero():
		log.Info("event failed, will retry", "at", c.RetryAt, "err", c.Error)
	default:
		log.Warn("event failed for good; kept with its payload (stoke events --failed)", "err", c.Error)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
