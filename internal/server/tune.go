package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/gateway"
	"github.com/stokehq/stoke/internal/keepalive"
	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/runtime/httpwire"
	"github.com/stokehq/stoke/internal/tune"
)

// tuneState is `stoke tune`'s share of the server: the one tune running,
// the temporary pools it has open (so Close can stop them), and the latest
// report per function (in memory: a dashboard shows the last one; a
// restart forgets it).
type tuneState struct {
	mu      sync.Mutex
	running string
	pools   map[*pool.Pool]bool
	latest  map[string]*tune.Report
}

// begin claims the tuner: one tune at a time, since two would share the
// CPUs and skew each other's numbers.
func (t *tuneState) begin(fn string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.running != "" {
		return &admin.TuneError{Status: http.StatusConflict, Msg: fmt.Sprintf("a tune of %s is running; one at a time, so they do not share the CPUs", t.running)}
	}
	t.running = fn
	return nil
}

func (t *tuneState) end() {
	t.mu.Lock()
	t.running = ""
	t.mu.Unlock()
}

func (t *tuneState) track(p *pool.Pool, on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pools == nil {
		t.pools = map[*pool.Pool]bool{}
	}
	if on {
		t.pools[p] = true
	} else {
		delete(t.pools, p)
	}
}

// closeAll stops every temporary pool: the server is shutting down.
func (t *tuneState) closeAll() {
	t.mu.Lock()
	ps := make([]*pool.Pool, 0, len(t.pools))
	for p := range t.pools {
		ps = append(ps, p)
	}
	t.mu.Unlock()
	for _, p := range ps {
		p.Close()
	}
}

// LatestTune is the last finished tune of fn, or nil (admin API
// GET /v1/functions/{name}/tune/latest).
func (s *Server) LatestTune(fn string) *tune.Report {
	s.tunes.mu.Lock()
	defer s.tunes.mu.Unlock()
	return s.tunes.latest[fn]
}

// Tune measures function fn at each of plan's memory sizes on a temporary
// version (admin API POST /v1/functions/{name}/tune): a pool of one
// instance, not routed, that this call alone invokes. The live version is
// not touched. Each temporary pool is closed before the next size starts
// and, whatever happens (a failed start, ctx cancelled by a client gone),
// before Tune returns. Its invocations are not recorded: they would mix
// other memory sizes into the function's `stoke cost`.
func (s *Server) Tune(ctx context.Context, fn string, plan tune.Plan, progress func(tune.Progress)) (*tune.Report, error) {
	if err := plan.Validate(); err != nil {
		return nil, &admin.TuneError{Status: http.StatusBadRequest, Msg: "tune plan: " + err.Error()}
	}
	s.mu.Lock()
	d, cfg := s.fns[fn], s.cfg
	s.mu.Unlock()
	if d == nil {
		return nil, &admin.TuneError{Status: http.StatusNotFound, Msg: "no function " + strconv.Quote(fn) + " is deployed"}
	}
	if len(plan.Event) > 0 && d.cfg.Runtime != "lambda" {
		return nil, &admin.TuneError{Status: http.StatusBadRequest, Msg: fmt.Sprintf("--event is for lambda functions; %s is %s: use --path, --method and --data", fn, d.cfg.Runtime)}
	}
	if err := s.tunes.begin(fn); err != nil {
		return nil, err
	}
	defer s.tunes.end()

	rep := &tune.Report{Function: fn, Runtime: d.cfg.Runtime, Version: strconv.Itoa(d.version), LiveMemoryMB: d.cfg.Memory,
		Started: time.Now(), Plan: plan, Prices: s.prices}
	if plan.Granularity > 0 {
		rep.Prices.Granularity = plan.Granularity
	}
	s.hub.Write(fn, "", "platform", fmt.Sprintf("TUNE started: temporary versions of version %d at %v MB, %d cold starts and %d invocations each",
		d.version, plan.MemoryMB, plan.Cold, plan.Invocations))
	m := &measurer{s: s, d: d, plan: &plan, progress: progress}
	for _, mem := range plan.MemoryMB {
		size, err := m.size(ctx, cfg, mem)
		if err != nil {
			s.hub.Write(fn, "", "platform", fmt.Sprintf("TUNE stopped at %d MB: %v", mem, err))
			if ctx.Err() != nil {
				return nil, fmt.Errorf("tune of %s cancelled at %d MB: %w", fn, mem, ctx.Err())
			}
			return nil, fmt.Errorf("tune of %s at %d MB: %w", fn, mem, err)
		}
		rep.Sizes = append(rep.Sizes, size)
	}
	rep.TookMS = float64(time.Since(rep.Started).Microseconds()) / 1000
	if err := rep.Summarize(); err != nil {
		return nil, err
	}
	s.hub.Write(fn, "", "platform", fmt.Sprintf("TUNE finished in %s: %s recommends %d MB", time.Since(rep.Started).Round(time.Millisecond),
		rep.Recommendations[0].Strategy, rep.Recommendations[0].MemoryMB))
	s.tunes.mu.Lock()
	if s.tunes.latest == nil {
		s.tunes.latest = map[string]*tune.Report{}
	}
	s.tunes.latest[fn] = rep
	s.tunes.mu.Unlock()
	return rep, nil
}

// measurer runs one plan's invocations and counts its steps.
type measurer struct {
	s        *Server
	d        *deployed // the live version, copied
	plan     *tune.Plan
	progress func(tune.Progress)
	step     int
}

// size measures one memory size on its own temporary pool, invoked through
// a gateway of its own (gateway.Run, as live traffic is: the same timeouts,
// the same timing), where the function has no route and nothing records.
func (m *measurer) size(ctx context.Context, cfg *config.Config, mem int) (tune.Size, error) {
	f := *m.d.cfg // shares Env and Command, which nothing writes
	f.Memory = mem
	f.Routes = nil
	// One instance, none kept warm, never reaped: the measurer starts and
	// stops it itself, so each cold start is one it asked for.
	f.KeepWarm, f.MaxInstances, f.KeepAlive = 0, 1, keepalive.Spec{Kind: keepalive.KindFixed, Fixed: 24 * time.Hour}
	tmp := m.s.newDeployed(cfg, &f, m.d.version, m.d.iso, nil) // outside the memory budget: nothing evicts what tune measures
	m.s.tunes.track(tmp.pool, true)
	defer func() {
		tmp.close() // idempotent; also stops an instance still starting
		m.s.tunes.track(tmp.pool, false)
	}()
	gw := gateway.New(gateway.Options{
		Timeout: cfg.Gateway.Timeout, MaxBodyBytes: cfg.Gateway.MaxBodyBytes, Granularity: cfg.Billing.Granularity, Logger: m.s.log,
	})
	gw.Set([]*gateway.Function{tmp.gw})
	out := tune.Size{MemoryMB: mem}
	// A python-wsgi template is made once per version, not on a request's
	// path: made before the first measured cold start, as on deploy.
	if pr, ok := tmp.rt.(runtime.Preparer); ok {
		if err := pr.Prepare(ctx); err != nil {
			return out, fmt.Errorf("preparing the function: %w", err)
		}
	}
	tmp.pool.Start()

	p := m.plan
	if p.Cold == 0 {
		// Warm invocations need a started instance; its start is not measured.
		if _, _, err := m.invoke(ctx, gw, f.Name, false); err != nil {
			return out, fmt.Errorf("starting an instance: %w", err)
		}
	}
	for i := range p.Cold {
		// Each cold start's instance is stopped after it answers, so the
		// next request finds none and waits for a new one; the last one
		// stays for the warm invocations.
		last := i == p.Cold-1 && p.Invocations > 0
		smp, who, err := m.invoke(ctx, gw, f.Name, !last)
		if err != nil {
			return out, fmt.Errorf("cold start %d of %d: %w", i+1, p.Cold, err)
		}
		out.Cold = append(out.Cold, smp)
		m.report(mem, tune.PhaseCold, i+1, p.Cold, smp, who)
	}
	for i := range p.Invocations {
		smp, who, err := m.invoke(ctx, gw, f.Name, false)
		if err != nil {
			return out, fmt.Errorf("warm invocation %d of %d: %w", i+1, p.Invocations, err)
		}
		out.Warm = append(out.Warm, smp)
		m.report(mem, tune.PhaseWarm, i+1, p.Invocations, smp, who)
	}
	return out, nil
}

// instanceRef names the instance that served a measurement.
type instanceRef struct {
	id  string
	pid int
}

func (m *measurer) report(mem int, phase string, n, of int, smp tune.Sample, who instanceRef) {
	m.step++
	if m.progress == nil {
		return
	}
	ms := smp.DurationMS
	if phase == tune.PhaseCold {
		ms = smp.TotalMS
	}
	m.progress(tune.Progress{MemoryMB: mem, Phase: phase, N: n, Of: of, Step: m.step, Steps: m.plan.Steps(),
		MS: ms, InitMS: smp.InitMS, Instance: who.id, Pid: who.pid})
}

// invoke runs the plan's request once through gw: the sample is the
// record gateway.Run keeps for every invocation (waiting for the instance,
// for a cold start its init, and the invocation). discard stops the
// instance afterwards.
func (m *measurer) invoke(ctx context.Context, gw *gateway.Gateway, fn string, discard bool) (tune.Sample, instanceRef, error) {
	var who instanceRef
	var callErr error
	reqID := record.NewRequestID()
	out := gw.Run(ctx, gateway.Call{
		Function: fn, RequestID: reqID, Method: m.plan.Method, Path: m.plan.Path, Discard: discard,
		Ready: func(rec *record.Record) { who.id = rec.InstanceID },
		Do: func(ctx context.Context, inst runtime.Instance) error {
			who.pid = inst.Pid()
			callErr = m.call(ctx, inst, reqID)
			var failed *answerError
			if errors.As(callErr, &failed) {
				return nil // answered: the instance is fine, the tune is not
			}
			return callErr
		},
	})
	if callErr != nil {
		return tune.Sample{}, who, callErr
	}
	if out.Err != nil {
		return tune.Sample{}, who, fmt.Errorf("%s: %s", out.ErrorType, out.Message)
	}
	rec := out.Record
	smp := tune.Sample{Cold: rec.Cold, DurationMS: rec.DurationMS, TotalMS: msOf(rec.End.Sub(rec.Start))}
	if rec.Cold {
		smp.InitMS = rec.InitMS
	}
	return smp, who, nil
}

func msOf(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// answerError is an answer that is an error: a function error, or a status
// of 400 or more. It fails the tune (timing failures would measure the
// wrong thing) but not the instance.
type answerError struct{ msg string }

func (e *answerError) Error() string { return e.msg }

// call sends the plan's event (lambda functions) or HTTP request.
func (m *measurer) call(ctx context.Context, inst runtime.Instance, reqID string) error {
	p := m.plan
	if len(p.Event) > 0 {
		ei, ok := inst.(runtime.EventInstance)
		if !ok {
			return errors.New("this instance does not take events")
		}
		deadline, _ := ctx.Deadline()
		res, err := ei.InvokeEvent(ctx, &runtime.Invocation{RequestID: reqID, Payload: p.Event, Deadline: deadline})
		if err != nil {
			return err
		}
		if res.FunctionError != "" {
			return &answerError{fmt.Sprintf("function error %s: %s", res.ErrorType, snippet(res.Payload))}
		}
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, p.Method, "http://localhost"+p.Path, bytes.NewReader(p.Body))
	if err != nil {
		return fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("X-Request-Id", reqID)
	w := &httpwire.Capture{Limit: 512}
	if err := inst.Invoke(w, req); err != nil {
		return err
	}
	if w.Status >= 400 {
		return &answerError{fmt.Sprintf("%s %s answered %d: %s", p.Method, p.Path, w.Status, snippet(w.Body.Bytes()))}
	}
	return nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
