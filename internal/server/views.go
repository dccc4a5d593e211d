package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	dto "github.com/prometheus/client_model/go"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/cache"
	"github.com/stokehq/stoke/internal/cost"
	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/store"
)

// The admin API's views. On one node they read this node; in a cluster
// they ask every node (cluster.Gather) and merge, each item naming its
// node. Records and logs stay in each node's SQLite.

type logsArg struct {
	Function string `json:"function"`
	Limit    int    `json:"limit"`
}

type eventsArg struct {
	Function string `json:"function"`
	Status   string `json:"status"`
	Limit    int    `json:"limit"`
}

type usageArg struct {
	Function string    `json:"function"`
	Since    time.Time `json:"since"`
}

// serveViews answers the other nodes' views from this node's state.
func (s *Server) serveViews() error {
	return s.node.ServeViews(func(ctx context.Context, kind string, arg json.RawMessage) (any, error) {
		switch kind {
		case "functions":
			return s.localFunctions(), nil
		case "records":
			var q store.Query
			if err := json.Unmarshal(arg, &q); err != nil {
				return nil, err
			}
			return s.localRecords(ctx, q)
		case "logs":
			var a logsArg
			if err := json.Unmarshal(arg, &a); err != nil {
				return nil, err
			}
			return s.localTailLogs(ctx, a.Function, a.Limit)
		case "usage":
			var a usageArg
			if err := json.Unmarshal(arg, &a); err != nil {
				return nil, err
			}
			if err := s.st.Flush(ctx); err != nil {
				return nil, err
			}
			return s.st.Usage(ctx, a.Function, a.Since, s.prices.Granularity)
		case "arrivals":
			var a usageArg
			if err := json.Unmarshal(arg, &a); err != nil {
				return nil, err
			}
			return s.st.Arrivals(ctx, a.Function, a.Since)
		case "events":
			var a eventsArg
			if err := json.Unmarshal(arg, &a); err != nil {
				return nil, err
			}
			return s.localEvents(ctx, a.Function, a.Status, a.Limit)
		case "trace":
			var id string
			if err := json.Unmarshal(arg, &id); err != nil {
				return nil, err
			}
			t, err := s.localTrace(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				return nil, nil // not here: another node has it
			}
			return t, err
		case "traces":
			var a tracesArg
			if err := json.Unmarshal(arg, &a); err != nil {
				return nil, err
			}
			return s.localTraces(ctx, a.Function, a.Limit)
		case "cache-purge":
			var a purgeArg
			if err := json.Unmarshal(arg, &a); err != nil {
				return nil, err
			}
			return s.localPurgeCache(a.Function, a.Purge)
		case "metrics":
			fams, err := s.metrics.Registry().Gather()
			if err != nil {
				return nil, err
			}
			var b strings.Builder
			for _, f := range fams {
				if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
					return nil, err
				}
			}
			return b.String(), nil
		}
		return nil, fmt.Errorf("no view %q", kind)
	})
}

// gather asks every node for a view and decodes each answer into a T.
func gather[T any](ctx context.Context, s *Server, kind string, arg any) (map[string]T, error) {
	answers, missing, err := s.node.Gather(ctx, kind, arg)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		s.log.Warn("cluster view without some nodes", "view", kind, "missing", missing)
	}
	out := map[string]T{}
	for _, a := range answers {
		var v T
		if err := json.Unmarshal(a.Data, &v); err != nil {
			return nil, fmt.Errorf("node %s's %s: %w", a.Node, kind, err)
		}
		out[a.Node] = v
	}
	return out, nil
}

// Functions lists the deployed functions for `stoke ls`; in a cluster,
// with every node's instances (each naming its node).
func (s *Server) Functions() []admin.FunctionInfo {
	if s.node == nil {
		return s.localFunctions()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	byNode, err := gather[[]admin.FunctionInfo](ctx, s, "functions", nil)
	if err != nil {
		s.log.Warn("cluster view of functions; showing this node's", "err", err)
		return s.localFunctions()
	}
	merged := map[string]*admin.FunctionInfo{}
	var names []string
	for _, node := range sortedKeys(byNode) {
		for _, f := range byNode[node] {
			for i := range f.Instances {
				f.Instances[i].Node = node
			}
			m := merged[f.Name]
			if m == nil {
				f.Node = ""
				merged[f.Name] = &f
				names = append(names, f.Name)
				continue
			}
			m.Instances = append(m.Instances, f.Instances...)
			m.Waiting += f.Waiting
			m.Offered = m.Offered || f.Offered
			// Each node has its own cache: the function's is their sum.
			if f.Cache != nil {
				if m.Cache == nil {
					m.Cache = &cache.Stats{}
				}
				m.Cache.Add(*f.Cache)
			}
		}
	}
	sort.Strings(names)
	out := make([]admin.FunctionInfo, 0, len(names))
	for _, n := range names {
		out = append(out, *merged[n])
	}
	return out
}

// Records are the invocations matching q, newest first; in a cluster,
// every node's, each naming its node.
func (s *Server) Records(ctx context.Context, q store.Query) ([]record.Record, error) {
	if s.node == nil {
		return s.localRecords(ctx, q)
	}
	byNode, err := gather[[]record.Record](ctx, s, "records", q)
	if err != nil {
		return nil, err
	}
	var out []record.Record
	for node, recs := range byNode {
		for _, r := range recs {
			r.Node = node
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.After(out[j].Start) })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// Events lists a function's Event invocations (stoke events); in a
// cluster, the outcomes every node keeps and the events each runs now
// (the queue itself is JetStream's), each naming its node.
func (s *Server) Events(ctx context.Context, function, status string, limit int) ([]admin.EventInfo, error) {
	if s.node == nil {
		return s.localEvents(ctx, function, status, limit)
	}
	byNode, err := gather[[]admin.EventInfo](ctx, s, "events", eventsArg{Function: function, Status: status, Limit: limit})
	if err != nil {
		return nil, err
	}
	var out []admin.EventInfo
	for node, evs := range byNode {
		for _, ev := range evs {
			ev.Node = node
			out = append(out, ev)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Updated.After(out[j].Updated) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// TailLogs is the last n lines of function's log; in a cluster, of every
// node's, merged by time.
func (s *Server) TailLogs(ctx context.Context, function string, n int) ([]store.LogLine, error) {
	if s.node == nil {
		return s.localTailLogs(ctx, function, n)
	}
	lines, err := s.clusterLogs(ctx, function, n)
	if err != nil {
		return nil, err
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, nil
}

// Logs is function's lines after a cursor. On one node the cursor is a
// line's Seq. A cluster's nodes number their lines each on its own, so
// there a line's Seq is its time (Unix nanoseconds) and a follower gets
// the lines logged after the last it saw, from every node's latest
// thousand.
func (s *Server) Logs(ctx context.Context, function string, afterSeq int64, limit int) ([]store.LogLine, error) {
	if s.node == nil {
		return s.localLogs(ctx, function, afterSeq, limit)
	}
	lines, err := s.clusterLogs(ctx, function, 1000)
	if err != nil {
		return nil, err
	}
	var out []store.LogLine
	for _, l := range lines {
		if l.Seq > afterSeq {
			out = append(out, l)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (s *Server) clusterLogs(ctx context.Context, function string, n int) ([]store.LogLine, error) {
	byNode, err := gather[[]store.LogLine](ctx, s, "logs", logsArg{Function: function, Limit: n})
	if err != nil {
		return nil, err
	}
	var out []store.LogLine
	for node, lines := range byNode {
		for _, l := range lines {
			l.Node = node
			l.Seq = l.Time.UnixNano()
			out = append(out, l)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// usage is the invocations' usage for stoke cost; in a cluster, summed
// over the nodes (the duration percentiles are the largest node's).
func (s *Server) usage(ctx context.Context, function string, from time.Time) ([]cost.Usage, error) {
	if s.node == nil {
		return s.st.Usage(ctx, function, from, s.prices.Granularity)
	}
	byNode, err := gather[[]cost.Usage](ctx, s, "usage", usageArg{Function: function, Since: from})
	if err != nil {
		return nil, err
	}
	merged := map[string]*cost.Usage{}
	for _, node := range sortedKeys(byNode) {
		for _, u := range byNode[node] {
			m := merged[u.Function]
			if m == nil {
				merged[u.Function] = &u
				continue
			}
			if u.Billable > m.Billable {
				m.DurationP50, m.DurationP95, m.DurationP99 = u.DurationP50, u.DurationP95, u.DurationP99
			}
			m.Invocations += u.Invocations
			m.Billable += u.Billable
			m.ColdStarts += u.ColdStarts
			m.Throttles += u.Throttles
			m.BilledMBMS += u.BilledMBMS
			m.InitMBMS += u.InitMBMS
		}
	}
	out := make([]cost.Usage, 0, len(merged))
	for _, u := range merged {
		out = append(out, *u)
	}
	return out, nil
}

// arrivals are a function's recorded arrivals (keep-warm advice); in a
// cluster, every node's in time order.
func (s *Server) arrivals(ctx context.Context, function string, from time.Time) ([]cost.Arrival, error) {
	if s.node == nil {
		return s.st.Arrivals(ctx, function, from)
	}
	byNode, err := gather[[]cost.Arrival](ctx, s, "arrivals", usageArg{Function: function, Since: from})
	if err != nil {
		return nil, err
	}
	var out []cost.Arrival
	for _, a := range byNode {
		out = append(out, a...)
	}
	slices.SortFunc(out, func(a, b cost.Arrival) int { return a.Start.Compare(b.Start) })
	return out, nil
}

// clusterMetrics serves every node's metrics, each series labelled with
// its node.
func (s *Server) clusterMetrics(w http.ResponseWriter, r *http.Request) {
	byNode, err := gather[string](r.Context(), s, "metrics", nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fams := map[string]*dto.MetricFamily{}
	for _, node := range sortedKeys(byNode) {
		p := expfmt.NewTextParser(model.UTF8Validation)
		parsed, err := p.TextToMetricFamilies(strings.NewReader(byNode[node]))
		if err != nil {
			http.Error(w, fmt.Sprintf("node %s's metrics: %v", node, err), http.StatusInternalServerError)
			return
		}
		for name, f := range parsed {
			for _, m := range f.Metric {
				m.Label = append(m.Label, &dto.LabelPair{Name: proto.String("node"), Value: proto.String(node)})
			}
			if have := fams[name]; have != nil {
				have.Metric = append(have.Metric, f.Metric...)
			} else {
				fams[name] = f
			}
		}
	}
	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	for _, name := range sortedKeys(fams) {
		_, _ = expfmt.MetricFamilyToText(w, fams[name])
	}
}

func sortedKeys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
