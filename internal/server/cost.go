package server

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/cost"
	"github.com/stokehq/stoke/internal/metrics"
)

func prices(b config.Billing) cost.Prices {
	return cost.Prices{
		Granularity:         b.Granularity,
		PerGBSecond:         b.PricePerGBSecond,
		PerRequest:          b.PricePerRequest,
		BillInit:            b.BillInit,
		KeepWarmPerGBSecond: b.KeepWarmPricePerGBSecond,
	}
}

// Metrics serves /metrics (admin API).
func (s *Server) Metrics() http.Handler { return s.metrics.Handler() }

// instanceCounts feeds stoke_instances from the pools on each scrape.
func (s *Server) instanceCounts() []metrics.FunctionInstances {
	fns := s.Functions()
	out := make([]metrics.FunctionInstances, 0, len(fns))
	for _, f := range fns {
		by := map[string]int{}
		for _, in := range f.Instances {
			by[string(in.State)]++
		}
		out = append(out, metrics.FunctionInstances{Function: f.Name, ByState: by})
	}
	return out
}

// Cost prices the invocations of function ("" for all) in the last `since`
// (admin API GET /v1/cost). Keep-warm cost is for the part of the window
// this server has been up, at each function's keep_warm as deployed now;
// the advice replays each deployed function's recorded arrivals.
func (s *Server) Cost(ctx context.Context, function string, since time.Duration) (*admin.CostReport, error) {
	if err := s.st.Flush(ctx); err != nil {
		return nil, err
	}
	now := time.Now()
	from := now.Add(-since)
	s.mu.Lock()
	cfgs := make(map[string]*config.Function, len(s.fns))
	for name, d := range s.fns {
		if function == "" || name == function {
			cfgs[name] = d.cfg
		}
	}
	s.mu.Unlock()

	us, err := s.st.Usage(ctx, function, from, s.prices.Granularity)
	if err != nil {
		return nil, err
	}
	// Deployed functions without invocations still cost their keep_warm.
	seen := map[string]bool{}
	for _, u := range us {
		seen[u.Function] = true
	}
	for name := range cfgs {
		if !seen[name] {
			us = append(us, cost.Usage{Function: name})
		}
	}
	sort.Slice(us, func(i, j int) bool { return us[i].Function < us[j].Function })

	up := now.Sub(from)
	if from.Before(s.started) {
		up = now.Sub(s.started)
	}
	rep := &admin.CostReport{Since: from, Until: now, Prices: s.prices, Functions: make([]cost.Summary, 0, len(us))}
	for _, u := range us {
		f := cfgs[u.Function]
		if f == nil { // no longer deployed: its invocations, no keep-warm, no advice
			rep.Functions = append(rep.Functions, s.prices.Summarize(u, 0, 0, 0))
			continue
		}
		sum := s.prices.Summarize(u, f.Memory, f.KeepWarm, up)
		arr, err := s.st.Arrivals(ctx, u.Function, from)
		if err != nil {
			return nil, err
		}
		sum.Advice = s.prices.AdviseKeepWarm(arr, cost.KeepWarmChoices, f.IdleTimeout, f.Memory)
		rep.Functions = append(rep.Functions, sum)
	}
	return rep, nil
}
