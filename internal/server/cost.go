package server

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/cost"
	"github.com/stokehq/stoke/internal/keepalive"
	"github.com/stokehq/stoke/internal/metrics"
	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/simulate"
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

// Metrics serves /metrics (admin API); a cluster's merges every node's
// (views.go).
func (s *Server) Metrics() http.Handler {
	if s.node != nil {
		return http.HandlerFunc(s.clusterMetrics)
	}
	return s.metrics.Handler()
}

// instanceCounts feeds stoke_instances from the pools on each scrape.
func (s *Server) instanceCounts() []metrics.FunctionInstances {
	fns := s.localFunctions() // each node counts its own; a cluster labels them by node
	out := make([]metrics.FunctionInstances, 0, len(fns))
	for _, f := range fns {
		by := map[string]int{}
		for _, in := range f.Instances {
			by[string(in.State)]++
		}
		out = append(out, metrics.FunctionInstances{Function: f.Name, ByState: by,
			Failing: f.Health.Failing, StartFailures: f.Health.Failures})
	}
	return out
}

// Cost prices the invocations of function ("" for all) in the last `since`
// (admin API GET /v1/cost). Keep-warm cost is for the part of the window
// this server has been up, at each function's keep_warm as deployed now;
// the advice replays each deployed function's recorded arrivals.
func (s *Server) Cost(ctx context.Context, function string, since time.Duration) (*admin.CostReport, error) {
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	now := time.Now()
	from := now.Add(-since)
	s.mu.Lock()
	cfgs := make(map[string]*config.Function, len(s.fns))
	pools := map[string]*pool.Pool{}
	for name, d := range s.fns {
		if function == "" || name == function {
			cfgs[name], pools[name] = d.cfg, d.pool
		}
	}
	s.mu.Unlock()
	live := map[string]float64{} // idle GB-s each running version measured
	for name, p := range pools {
		live[name] = p.KeepAlive().IdleGBSeconds
	}

	us, err := s.usage(ctx, function, from)
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
		arr, err := s.arrivals(ctx, u.Function, from)
		if err != nil {
			return nil, err
		}
		sum.Advice, sum.KeepAlive = s.replay(f, arr, from, now, live[u.Function])
		rep.Functions = append(rep.Functions, sum)
	}
	return rep, nil
}

// replay runs the window's recorded arrivals of f through the pool's own
// keep-alive code (package simulate): f's policy with each keep_warm choice
// for the advice, and fixed:10m (Lambda's) as the baseline its saved cold
// starts and idle memory are measured against, priced with liveIdle (what
// the running pool measured). Nothing without arrivals.
func (s *Server) replay(f *config.Function, arr []cost.Arrival, from, to time.Time, liveIdle float64) ([]cost.Advice, *cost.KeepAlive) {
	if len(arr) == 0 {
		return nil, nil
	}
	recorded := 0
	for _, a := range arr {
		if a.Cold {
			recorded++
		}
	}
	tr := simulate.FromArrivals(f.Name, f.Memory, arr, from, to)
	pols := []simulate.Policy{{Name: "deployed", Spec: f.KeepAlive, KeepWarm: f.KeepWarm}}
	for _, n := range cost.KeepWarmChoices {
		pols = append(pols, simulate.Policy{Name: fmt.Sprintf("keep_warm:%d", n), Spec: f.KeepAlive, KeepWarm: n})
	}
	pols = append(pols, simulate.Policy{Name: simulate.Fixed10m, Spec: keepalive.Spec{Kind: keepalive.KindFixed, Fixed: 10 * time.Minute}})
	rep := simulate.Run(tr, simulate.Options{Policies: pols})
	by := map[string]simulate.PolicyReport{}
	for _, p := range rep.Policies {
		by[p.Policy] = p
	}
	advice := make([]cost.Advice, 0, len(cost.KeepWarmChoices))
	for _, n := range cost.KeepWarmChoices {
		advice = append(advice, s.prices.NewAdvice(n, f.Memory, by[fmt.Sprintf("keep_warm:%d", n)].ColdStarts, recorded))
	}
	own, base := by["deployed"], by[simulate.Fixed10m]
	ka := &cost.KeepAlive{
		Policy: f.KeepAlive.String(), ColdStarts: own.ColdStarts, BaselineColdStarts: base.ColdStarts,
		IdleGBSeconds: own.WastedMemoryGBs, BaselineIdleGBs: base.WastedMemoryGBs, Prewarms: own.Prewarms,
		LiveIdleGBSeconds: liveIdle,
	}
	s.prices.PriceKeepAlive(ka, tr.Functions[0].Init, f.Memory)
	return advice, ka
}
