package invokeapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/stokehq/stoke/internal/lambdaspec"
	"github.com/stokehq/stoke/internal/store"
)

// idleCheck bounds how long an idle worker sleeps without looking at the
// queue: another process may have queued work, and a clock jump may have
// made work due.
const idleCheck = 5 * time.Second

// enqueue saves an Event invocation; once it returns nil the event survives
// a crash.
func (a *API) enqueue(ctx context.Context, t lambdaspec.FunctionRef, reqID, traceID string, payload []byte) *apiError {
	if a.o.Store == nil {
		return &apiError{http.StatusInternalServerError, "ServiceException", "Event invocations need a store", bodyService}
	}
	_, err := a.o.Store.Enqueue(ctx, store.AsyncItem{
		Function: t.Name, Qualifier: t.Qualifier, Payload: payload, RequestID: reqID, TraceID: traceID,
	})
	if err != nil {
		return &apiError{http.StatusInternalServerError, "ServiceException", "could not queue the event: " + err.Error(), bodyService}
	}
	select {
	case a.wake <- struct{}{}:
	default:
	}
	return nil
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

// attempt runs one attempt of an Event invocation and records how it went:
// succeeded, queued for a retry after the next delay, or failed after
// MaxAsyncAttempts. Each attempt is also a normal record (through Run),
// under the same request id, as Lambda keeps it across retries.
func (a *API) attempt(run context.Context, it store.AsyncItem) {
	log := a.log.With("request_id", it.RequestID, "function", it.Function, "attempt", it.Attempts)
	t := lambdaspec.FunctionRef{Name: it.Function, Qualifier: it.Qualifier}
	var errText string
	if e := a.exists(t); e != nil {
		// Deleted (or redeployed past its qualifier) while queued: retrying
		// cannot help.
		errText = e.typ + ": " + e.msg
		it.Attempts = a.o.MaxAsyncAttempts
	} else {
		res, e := a.invoke(run, call{
			t: t, arn: t.ARN(a.o.Region, a.o.AccountID), reqID: it.RequestID, payload: it.Payload, traceID: it.TraceID,
			path: "/2015-03-31/functions/" + it.Function + "/invocations",
		})
		switch {
		case run.Err() != nil:
			// Close cut it off: leave it running so the next Start retries it.
			log.Warn("event cut off by shutdown")
			return
		case e != nil:
			errText = e.typ + ": " + e.msg
		case res.functionError != "":
			errText = res.errorType + ": " + string(res.payload)
			if res.errorType == "" {
				errText = res.functionError + ": " + string(res.payload)
			}
		}
	}
	errText = truncate(errText, 4096) // the payload of a function error can be megabytes
	var retryAt time.Time
	if errText != "" && it.Attempts < a.o.MaxAsyncAttempts {
		d := a.o.RetryDelays[min(it.Attempts, len(a.o.RetryDelays))-1]
		retryAt = time.Now().Add(d)
	}
	// The outcome must be saved even as the server shuts down.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(run), 10*time.Second)
	defer cancel()
	if err := a.o.Store.Complete(ctx, it.ID, errText == "", errText, retryAt); err != nil && !errors.Is(err, store.ErrClosed) {
		log.Error("record event outcome", "err", err)
	}
	switch {
	case errText == "":
		log.Debug("event succeeded")
	case !retryAt.IsZero():
		log.Info("event failed, will retry", "at", retryAt, "err", errText)
	default:
		log.Warn("event failed for good", "err", errText)
	}
}
