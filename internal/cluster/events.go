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
// work-queue retention. An event is a message whose id (Nats-Msg-Id) is
// its request id, so a retried Invoke is stored once; a 202 is answered
// once the stream acknowledged it (a majority of replicas have it). Every
// node's workers pull from one durable consumer. A worker holds a message
// while the invocation runs (telling JetStream it is in progress every
// eventBeat); a node that dies with an event in flight stops doing so,
// and JetStream delivers it to another node's worker after eventAckWait.
// A failed attempt is handed back with the retry delay (a negative
// acknowledgement with delay); the last failure and success remove it.
// How many attempts and how long apart are the Invoke API's decision, as
// on one node; MaxDeliver is only a backstop against a poison event that
// kills every node that runs it.

const (
	eventAckWait = 5 * time.Second
	eventBeat    = time.Second
	// eventMaxDeliver bounds deliveries, crashes included.
	eventMaxDeliver = 10
	// eventPoll is how long a worker's pull waits for an event.
	eventPoll = time.Second
)

// EventQueue is the cluster's Event queue, an invokeapi.Queue.
type EventQueue struct {
	n    *Node
	cons jetstream.Consumer

	mu       sync.Mutex
	nextID   int64
	inflight map[int64]*heldEvent
}

type heldEvent struct {
	msg  jetstream.Msg
	stop context.CancelFunc
	done chan struct{}
}

func (n *Node) eventSubject(fn string) string { return n.cfg.Name + ".events." + fn }

// EventQueue makes (or finds) the cluster's Event stream and its workers'
// consumer.
func (n *Node) EventQueue(ctx context.Context) (*EventQueue, error) {
	var cons jetstream.Consumer
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		s, err := n.js.CreateOrUpdateStream(cctx, jetstream.StreamConfig{
			Name:        n.cfg.Name + "-events",
			Description: "Stoke Event invocations",
			Subjects:    []string{n.cfg.Name + ".events.>"},
			Retention:   jetstream.WorkQueuePolicy,
			Replicas:    n.cfg.Replicas,
			Storage:     jetstream.FileStorage,
			Duplicates:  10 * time.Minute,
			// Lambda keeps an event up to 6 hours.
			MaxAge: 6 * time.Hour,
		})
		if err == nil {
			cons, err = s.CreateOrUpdateConsumer(cctx, jetstream.ConsumerConfig{
				Durable:       "workers",
				AckPolicy:     jetstream.AckExplicitPolicy,
				AckWait:       eventAckWait,
				MaxDeliver:    eventMaxDeliver,
				MaxAckPending: 10000,
			})
		}
		cancel()
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: the Event stream: %w", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
	return &EventQueue{n: n, cons: cons, inflight: map[int64]*heldEvent{}}, nil
}

// Enqueue stores an event; it returns once JetStream acknowledged it.
func (q *EventQueue) Enqueue(ctx context.Context, it store.AsyncItem) (int64, error) {
	it.Created = time.Now().UTC()
	b, err := json.Marshal(it)
	if err != nil {
		return 0, err
	}
	m := nats.NewMsg(q.n.eventSubject(it.Function))
	m.Data = b
	m.Header.Set(jetstream.MsgIDHeader, it.RequestID)
	ack, err := q.n.js.PublishMsg(ctx, m)
	if err != nil {
		return 0, fmt.Errorf("cluster: queueing the event of %s: %w", it.Function, err)
	}
	return int64(ack.Sequence), nil
}

// Claim pulls the next event, waiting up to eventPoll for one.
func (q *EventQueue) Claim(ctx context.Context, _ time.Time) (store.AsyncItem, bool, error) {
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
		md, err := msg.Metadata()
		if err != nil {
			return store.AsyncItem{}, false, err
		}
		it.Attempts = int(md.NumDelivered)
		it.Status = store.AsyncRunning
		h := &heldEvent{msg: msg, done: make(chan struct{})}
		var hctx context.Context
		hctx, h.stop = context.WithCancel(q.n.ctx)
		q.mu.Lock()
		q.nextID++
		it.ID = q.nextID
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

// Complete ends an attempt: acknowledged (gone) on success or final
// failure, handed back with a delay for a retry.
func (q *EventQueue) Complete(ctx context.Context, id int64, ok bool, errText string, retryAt time.Time) error {
	q.mu.Lock()
	h := q.inflight[id]
	delete(q.inflight, id)
	q.mu.Unlock()
	if h == nil {
		return fmt.Errorf("cluster: event %d is not running: %w", id, store.ErrNotFound)
	}
	h.stop()
	<-h.done
	var err error
	switch {
	case ok:
		err = h.msg.DoubleAck(ctx)
	case !retryAt.IsZero():
		err = h.msg.NakWithDelay(max(time.Until(retryAt), 0))
	default:
		// Failed for good: the attempts are over (the Invoke API recorded
		// why); Term keeps JetStream from delivering it again.
		err = h.msg.Term()
	}
	if err != nil {
		return fmt.Errorf("cluster: completing an event: %w", err)
	}
	return nil
}

// RequeueRunning has nothing to do: JetStream redelivers what a dead
// worker held.
func (q *EventQueue) RequeueRunning(context.Context) (int, error) { return 0, nil }

// NextDue is always now: Claim itself waits for the next event.
func (q *EventQueue) NextDue(context.Context) (time.Time, bool, error) { return time.Now(), true, nil }
