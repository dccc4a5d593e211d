package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
)

// One view of the cluster: records, logs and instances stay on the node
// that has them; a view asks every node over NATS (request, many
// replies) and merges. A node that does not answer within viewTimeout is
// named in the answer's Missing rather than holding the view up.

const viewTimeout = 2 * time.Second

// ViewHandler answers one kind of query for this node.
type ViewHandler func(ctx context.Context, kind string, arg json.RawMessage) (any, error)

type viewReply struct {
	Node string          `json:"node"`
	Data json.RawMessage `json:"data,omitempty"`
	Err  string          `json:"err,omitempty"`
}

// Answer is one node's reply to a view.
type Answer struct {
	Node string
	Data json.RawMessage
}

func (n *Node) viewSubject(kind string) string { return n.cfg.Name + ".view." + kind }

// ServeViews answers every node's views with h until the node closes.
func (n *Node) ServeViews(h ViewHandler) error {
	_, err := n.nc.Subscribe(n.cfg.Name+".view.*", func(m *nats.Msg) {
		kind := m.Subject[len(n.cfg.Name+".view."):]
		ctx, cancel := context.WithTimeout(n.ctx, viewTimeout)
		defer cancel()
		r := viewReply{Node: n.name}
		v, err := h(ctx, kind, m.Data)
		if err == nil {
			r.Data, err = json.Marshal(v)
		}
		if err != nil {
			r.Err, r.Data = err.Error(), nil
		}
		b, _ := json.Marshal(r)
		if len(b) > int(n.nc.MaxPayload()) {
			b, _ = json.Marshal(viewReply{Node: n.name, Err: fmt.Sprintf("answer of %d bytes is over NATS' limit; ask for less", len(b))})
		}
		_ = m.Respond(b)
	})
	return err
}

// Gather asks every live node for kind with arg and returns their answers
// (this node's included), and the live nodes that did not answer in time.
func (n *Node) Gather(ctx context.Context, kind string, arg any) (answers []Answer, missing []string, err error) {
	b, err := json.Marshal(arg)
	if err != nil {
		return nil, nil, err
	}
	inbox := n.nc.NewRespInbox()
	sub, err := n.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, nil, err
	}
	defer sub.Unsubscribe()
	if err := n.nc.PublishRequest(n.viewSubject(kind), inbox, b); err != nil {
		return nil, nil, err
	}
	want := n.Alive()
	got := map[string]bool{}
	ctx, cancel := context.WithTimeout(ctx, viewTimeout)
	defer cancel()
	for len(got) < len(want) {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			break // timed out: name who is missing
		}
		var r viewReply
		if json.Unmarshal(m.Data, &r) != nil || got[r.Node] {
			continue
		}
		got[r.Node] = true
		if r.Err != "" {
			return nil, nil, fmt.Errorf("node %s: %s", r.Node, r.Err)
		}
		answers = append(answers, Answer{Node: r.Node, Data: r.Data})
	}
	for _, w := range want {
		if !got[w] {
			missing = append(missing, w)
		}
	}
	slices.SortFunc(answers, func(a, b Answer) int {
		switch {
		case a.Node < b.Node:
			return -1
		case a.Node > b.Node:
			return 1
		}
		return 0
	})
	return answers, missing, nil
}
