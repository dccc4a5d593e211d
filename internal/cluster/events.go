package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stokehq/stoke/internal/store"
)

// The Event queue of a cluster: a replicated JetStream stream with
// work-queue retention. An event is a message holding its item (the
// store's AsyncItem: attempts, throttles, last error, age), its id
// (Nats-Msg-Id) its request id, so a retried Invoke is stored once; a 202
// is answered once the stream acknowledged it (a majority of replicas
// have it). Every node's workers pull from one durable consumer. A worker
// holds a message while the invocation runs, telling JetStream it is in
// progress every eventBeat; a node that dies with an event in flight
// stops doing so, and JetStream delivers it to another node's worker
// after eventAckWait (the attempt cut off counts as interrupted, not as
// an attempt). The Invoke API decides the outcome as on one node: a retry
// or a throttle publishes the item again, its counts updated, due at the
// retry time (a worker that gets it early hands it back with that delay);
// success and final failure acknowledge it, and the node that ran it
// keeps the outcome in its SQLite (stoke events). MaxDeliver is only a
// backstop against an event that kills every node running it.

const (
	eventAckWait = 5 * time.Second
	eventBeat    = time.Second
	// eventMaxDeliver bounds deliveries, crashes included.
	eventMaxDeliver = 10
	// eventPoll is how long a worker's pull waits for an event.
	eventPoll = time.Second
	// enqueueFor is how long an Invoke waits for the stream to take its
	// event: a node lost may have led the stream, and a new leader takes
	// 4–9 s to elect. A node cut off from the majority refuses after it.
	enqueueFor = 12 * time.Second
)

// EventQueue is the cluster's Event queue, an invokeapi.Queue.
type EventQueue struct {
	n    *Node
	cons jetstream.Consumer
	// Keep stores an event's outcome in this node's SQLite once it ran to
	// its end (succeeded, or failed for good).
	Keep func(ctx context.Context, it store.AsyncItem) error

	mu       sync.Mutex
	nextID   int64
	inflight map[int64]*heldEvent
}

type heldEvent struct {
	msg        jetstream.Msg
	item       store.AsyncItem
	stop       context.CancelFunc
	done       chan struct{}
	completing bool // Complete took it (under EventQueue.mu)
}

// Running lists function's events this node is running now, an outcome
// being stored included (stoke events: the cluster's queue itself is
// JetStream's).
func (q *EventQueue) Running(function string) []store.AsyncItem {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []store.AsyncItem
	for _, h := range q.inflight {
		if h.item.Function == function {
			out = append(out, h.item)
		}
	}
	return out
}

func (n *Node) eventSubject(fn string) string { return n.cfg.Name + ".events." + fn }

// EventQueue makes (or finds) the cluster's Event stream and its workers'
// consumer.
func (n *Node) EventQueue(ctx context.Context) (*EventQueue, error) {
	var cons jetstream.Consumer
	err := retry(ctx, func() error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		s, err := n.js.CreateOrUpdateStream(cctx, jetstream.StreamConfig{
			Name:        n.cfg.Name + "-events",
			Description: "Stoke Event invocations",
			Subjects:    []string{n.cfg.Name + ".events.>"},
			Retention:   jetstream.WorkQueuePolicy,
			Replicas:    n.cfg.Replicas,
			Storage:     jetstream.FileStorage,
			Duplicates:  10 * time.Minute,
			// Lambda keeps an event up to 6 hours (maximum_event_age).
			MaxAge: 6*time.Hour + 10*time.Minute,
		})
		if err != nil {
			return err
		}
		cons, err = s.CreateOrUpdateConsumer(cctx, jetstream.ConsumerConfig{
			Durable:       "workers",
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       eventAckWait,
			MaxDeliver:    eventMaxDeliver,
			MaxAckPending: 10000,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: the Event stream: %w", err)
	}
	return &EventQueue{n: n, cons: cons, inflight: map[int64]*heldEvent{}}, nil
}

// Enqueue stores an event; it returns once JetStream acknowledged it.
func (q *EventQueue) Enqueue(ctx context.Context, it store.AsyncItem) (int64, error) {
	now := time.Now().UTC()
	it.Created, it.AgeFrom, it.Status = now, now, store.AsyncQueued
	if it.NextAttempt.IsZero() {
		it.NextAttempt = now
	}
	// Retried through a leader election; the request id as the message id
	// stores it once even if an attempt that timed out was stored.
	var ack *jetstream.PubAck
	err := retryFor(ctx, enqueueFor, func() error {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var err error
		ack, err = q.publish(pctx, it, it.RequestID)
		return err
	})
	if err != nil {
		return 0, err
	}
	return int64(ack.Sequence), nil
}

// Requeue queues a failed event again by hand, its attempts and age
// starting over.
func (q *EventQueue) Requeue(ctx context.Context, it store.AsyncItem) error {
	now := time.Now().UTC()
	it.Attempts, it.Throttles, it.Interrupted = 0, 0, 0
	it.Status, it.NextAttempt, it.AgeFrom = store.AsyncQueued, now, now
	_, err := q.publish(ctx, it, fmt.Sprintf("%s/retry/%d", it.RequestID, now.UnixNano()))
	return err
}

func (q *EventQueue) publish(ctx context.Context, it store.AsyncItem, msgID string) (*jetstream.PubAck, error) {
	b, err := json.Marshal(it)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(q.n.eventSubject(it.Function))
	m.Data = b
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	ack, err := q.n.js.PublishMsg(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("cluster: queueing the event of %s: %w", it.Function, err)
	}
	return ack, nil
}

// Claim pulls the next due event, waiting up to eventPoll for one, and
// counts its attempt. An event not due yet goes back with its delay.
func (q *EventQueue) Claim(ctx context.Context, now time.Time) (store.AsyncItem, bool, error) {
	fctx, cancel := context.WithTimeout(ctx, eventPoll)
	defer cancel()
	batch, err := q.cons.Fetch(1, jetstream.FetchContext(fctx))
	if err != nil {
		if fctx.Err() != nil || errors.Is(err, nats.ErrTimeout) {
			return store.AsyncItem{}, false, nil
		}
		return store.AsyncItem{}, false, err
	}
	for msg := range batch.Messages() {
		var it store.AsyncItem
		if err := json.Unmarshal(msg.Data(), &it); err != nil {
			q.n.log.Error("cluster: unreadable event dropped", "subject", msg.Subject(), "err", err)
			_ = msg.Term()
			continue
		}
		if wait := it.NextAttempt.Sub(now); wait > 0 {
			_ = msg.NakWithDelay(wait)
			return store.AsyncItem{}, false, nil
		}
		md, err := msg.Metadata()
		if err != nil {
			return store.AsyncItem{}, false, err
		}
		// Deliveries beyond the expected ones (one, and one more when it
		// was published ahead of its due time and handed back) were cut
		// off with their node.
		expected := uint64(1)
		if it.NextAttempt.After(md.Timestamp) {
			expected = 2
		}
		if md.NumDelivered > expected {
			it.Interrupted += int(md.NumDelivered - expected)
		}
		it.Attempts++
		it.Status, it.Updated = store.AsyncRunning, now
		h := &heldEvent{msg: msg, done: make(chan struct{})}
		var hctx context.Context
		hctx, h.stop = context.WithCancel(q.n.ctx)
		q.mu.Lock()
		q.nextID++
		it.ID = q.nextID
		h.item = it
		q.inflight[it.ID] = h
		q.mu.Unlock()
		go h.hold(hctx)
		return it, true, nil
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && fctx.Err() == nil {
		return store.AsyncItem{}, false, err
	}
	return store.AsyncItem{}, false, nil
}

// hold tells JetStream the event is being worked on until stopped.
func (h *heldEvent) hold(ctx context.Context) {
	defer close(h.done)
	t := time.NewTicker(eventBeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = h.msg.InProgress()
		}
	}
}

// Complete ends an attempt as c says: a retry or a throttle queues the
// item again with its counts (due at c.RetryAt); success and final
// failure remove it, and this node keeps the outcome.
func (q *EventQueue) Complete(ctx context.Context, id int64, c store.Completion) error {
	q.mu.Lock()
	h := q.inflight[id]
	if h != nil && h.completing {
		h = nil
	}
	if h != nil {
		h.completing = true
	}
	q.mu.Unlock()
	if h == nil {
		return fmt.Errorf("cluster: event %d is not running: %w", id, store.ErrNotFound)
	}
	// Running (Running lists it) until its outcome is stored: that can
	// wait out a leader election, and a shutdown meanwhile cuts it off.
	defer func() {
		q.mu.Lock()
		delete(q.inflight, id)
		q.mu.Unlock()
	}()
	h.stop()
	<-h.done
	it := h.item
	it.ID = 0 // this node's number for it while it runs
	it.LastError = c.Error
	switch {
	case !c.RetryAt.IsZero():
		if c.Throttled {
			it.Attempts--
			it.Throttles++
		}
		it.Status, it.NextAttempt = store.AsyncQueued, c.RetryAt
		// A new message for the next try, then the old one is done; a
		// crash between the two stores the retry once (same id).
		msgID := fmt.Sprintf("%s/%d.%d.%d", it.RequestID, it.Attempts, it.Throttles, it.Interrupted)
		if _, err := q.publish(ctx, it, msgID); err != nil {
			_ = h.msg.Nak()
			return err
		}
	case c.OK:
		it.Status = store.AsyncSucceeded
	default:
		it.Status = store.AsyncFailed
	}
	if err := h.msg.DoubleAck(ctx); err != nil {
		return fmt.Errorf("cluster: completing an event: %w", err)
	}
	if it.Status != store.AsyncQueued && q.Keep != nil {
		return q.Keep(ctx, it)
	}
	return nil
}

// RequeueRunning has nothing to do: JetStream redelivers what a dead
// worker held.
func (q *EventQueue) RequeueRunning(context.Context) (int, error) { return 0, nil }

// NextDue is always now: Claim itself waits for the next event.
func (q *EventQueue) NextDue(context.Context) (time.Time, bool, error) { return time.Now(), true, nil }
