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
// the function has been deployed on this server, at its keep_warm as
// deployed now; the advice replays each deployed function's recorded
// arrivals, its keep_warm instances warm over the same part (warmFrom).
func (s *Server) Cost(ctx context.Context, function string, since time.Duration) (*admin.CostReport, error) {
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	now := time.Now()
	from := now.Add(-since)
	s.mu.Lock()
	cfgs := make(map[string]*config.Function, len(s.fns))
	pools := map[string]*pool.Pool{}
	deployedSince := map[string]time.Time{}
	for name, d := range s.fns {
		if function == "" || name == function {
			cfgs[name], pools[name], deployedSince[name] = d.cfg, d.pool, d.since
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

	rep := &admin.CostReport{Since: from, Until: now, Prices: s.prices, Functions: make([]cost.Summary, 0, len(us))}
	for _, u := range us {
		f := cfgs[u.Function]
		if f == nil { // no longer deployed: its invocations, no keep-warm, no advice
			rep.Functions = append(rep.Functions, s.prices.Summarize(u, 0, 0, 0))
			continue
		}
		warm := warmFrom(from, deployedSince[u.Function])
		sum := s.prices.Summarize(u, f.Memory, f.KeepWarm, now.Sub(warm))
		sum.KeepWarmSince = warm
		arr, err := s.arrivals(ctx, u.Function, from)
		if err != nil {
			return nil, err
		}
		sum.Advice, sum.KeepAlive = s.replay(f, arr, replayFrom(warm, from, arr), now, live[u.Function])
		rep.Functions = append(rep.Functions, sum)
	}
	return rep, nil
}

// warmFrom is when a function's keep_warm instances start costing money
// within a window from `from`: when it was deployed on this server, if
// later. Keep-warm instances exist only while a version of the function
// runs; a window reaching back before that charges nothing for it.
func warmFrom(from, deployed time.Time) time.Time {
	if deployed.After(from) {
		return deployed
	}
	return from
}

// replayFrom is where the replay of arr starts, the instant its keep_warm
// instances are idle from: warm (as the keep-warm column charges), or the
// first recorded arrival if earlier (records outlive a restart of the
// server; the function was deployed then too), never before the window.
// The replay used to start at the window's start whatever the function's
// age: a function ten minutes old kept 24 hours of idle memory.
func replayFrom(warm, from time.Time, arr []cost.Arrival) time.Time {
	start := warm
	for _, a := range arr {
		if a.Start.Before(start) {
			start = a.Start
		}
	}
	if start.Before(from) {
		return from
	}
	return start
}

// replay runs f's recorded arrivals of [from, to) through the pool's own
// keep-alive code (package simulate), keep_warm instances idle from `from`
// (replayFrom): f's policy with each keep_warm choice for the advice, and
// fixed:10m (Lambda's) as the baseline its saved cold starts and idle
// memory are measured against, priced with liveIdle (what the running pool
// measured). Nothing without arrivals.
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
		Policy: f.KeepAlive.String(), Since: from, ColdStarts: own.ColdStarts, BaselineColdStarts: base.ColdStarts,
		IdleGBSeconds: own.WastedMemoryGBs, BaselineIdleGBs: base.WastedMemoryGBs, Prewarms: own.Prewarms,
		LiveIdleGBSeconds: liveIdle,
	}
	s.prices.PriceKeepAlive(ka, tr.Functions[0].Init, f.Memory)
	return advice, ka
}
