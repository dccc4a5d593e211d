// Package tune is `stoke tune`'s arithmetic and output: the measurement
// plan the CLI sends, the statistics and recommendations computed from the
// samples the server measured, and the report as a table, JSON, a chart
// (SVG or PNG) or an HTML page. The measuring itself is the server's
// (internal/server/tune.go): it owns the pools.
package tune

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stokehq/stoke/internal/cost"
	"github.com/stokehq/stoke/internal/lambdaspec"
)

// Power Tuning's "all" memory sizes.
const (
	allFrom = 128
	allTo   = 3008
	allStep = 64
)

// DefaultMemory is --memory's default.
const DefaultMemory = "128,256,512,768,1024"

// Plan is what to measure, sent by the CLI as the body of
// POST /v1/functions/{name}/tune.
type Plan struct {
	MemoryMB    []int `json:"memory_mb"`   // ascending, no repeats
	Cold        int   `json:"cold"`        // cold starts per size
	Invocations int   `json:"invocations"` // warm invocations per size
	// The request for http (and lambda) functions, as through the gateway.
	Method string `json:"method"`
	Path   string `json:"path"`
	Body   []byte `json:"body,omitempty"`
	// Event, when set, is sent to a lambda function as its event payload
	// instead of an HTTP request.
	Event json.RawMessage `json:"event,omitempty"`
	// Granularity overrides billing.granularity for this report (0: the
	// server's), so `--granularity 100ms` prices with pre-2021 billing.
	Granularity time.Duration `json:"granularity_ns,omitempty"`
	// ColdRate is the share of requests assumed cold for the blended cost
	// and for the recommendation, 0 to 1.
	ColdRate float64 `json:"cold_rate"`
	Strategy string  `json:"strategy"` // cost, speed or balanced: the one to headline
	Weight   float64 `json:"weight"`   // balanced's weight on cost, 0 to 1
}

// ParseMemory reads --memory: "all" or a comma-separated list of MB.
func ParseMemory(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	var out []int
	if strings.EqualFold(s, "all") {
		for m := allFrom; m <= allTo; m += allStep {
			out = append(out, m)
		}
		return out, nil
	}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSuffix(strings.TrimSpace(strings.ToUpper(f)), "MB")
		if f == "" {
			continue
		}
		m, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("--memory %q: %q is not a number of MB; want e.g. 128,256,512 or all", s, f)
		}
		out = append(out, m)
	}
	return normalize(out), nil
}

func normalize(ms []int) []int {
	sort.Ints(ms)
	out := ms[:0]
	for i, m := range ms {
		if i == 0 || m != ms[i-1] {
			out = append(out, m)
		}
	}
	return out
}

// ParseRate reads --cold-rate: "1%" or "0.01".
func ParseRate(s string) (float64, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if pct {
		v /= 100
	}
	if err != nil || v < 0 || v > 1 || math.IsNaN(v) {
		return 0, fmt.Errorf("--cold-rate %q: want a share of requests like 1%% or 0.01, between 0 and 100%%", s)
	}
	return v, nil
}

// Validate checks a plan before anything starts, and fills defaults.
func (p *Plan) Validate() error {
	var errs []error
	if len(p.MemoryMB) == 0 {
		errs = append(errs, errors.New("no memory sizes to measure"))
	}
	p.MemoryMB = normalize(p.MemoryMB)
	for _, m := range p.MemoryMB {
		if m < lambdaspec.MinMemoryMB || m > lambdaspec.MaxMemoryMB {
			errs = append(errs, fmt.Errorf("memory %d MB is out of range; allowed: %d to %d", m, lambdaspec.MinMemoryMB, lambdaspec.MaxMemoryMB))
		}
	}
	if p.Cold < 0 || p.Invocations < 0 || p.Cold+p.Invocations == 0 {
		errs = append(errs, fmt.Errorf("cold %d, invocations %d: want at least one measurement per size", p.Cold, p.Invocations))
	}
	if p.Method == "" {
		p.Method = "GET"
		if len(p.Body) > 0 {
			p.Method = "POST"
		}
	}
	p.Method = strings.ToUpper(p.Method)
	if p.Path == "" {
		p.Path = "/"
	}
	if !strings.HasPrefix(p.Path, "/") {
		errs = append(errs, fmt.Errorf("path %q: want a path starting with /", p.Path))
	}
	if len(p.Event) > 0 && !json.Valid(p.Event) {
		errs = append(errs, errors.New("the event is not valid JSON"))
	}
	if p.Granularity < 0 {
		errs = append(errs, fmt.Errorf("granularity %s: want a positive duration like 1ms or 100ms", p.Granularity))
	}
	if p.ColdRate < 0 || p.ColdRate > 1 || math.IsNaN(p.ColdRate) {
		errs = append(errs, fmt.Errorf("cold rate %v: want 0 to 1", p.ColdRate))
	}
	if p.Strategy == "" {
		p.Strategy = cost.StrategyCost
	}
	switch p.Strategy {
	case cost.StrategyCost, cost.StrategySpeed, cost.StrategyBalanced:
	default:
		errs = append(errs, fmt.Errorf("strategy %q; allowed: cost, speed, balanced", p.Strategy))
	}
	if p.Weight < 0 || p.Weight > 1 || math.IsNaN(p.Weight) {
		errs = append(errs, fmt.Errorf("weight %v: want 0 (speed only) to 1 (cost only)", p.Weight))
	}
	return errors.Join(errs...)
}

// Steps is how many measured invocations the plan makes, for progress.
func (p *Plan) Steps() int { return len(p.MemoryMB) * (p.Cold + p.Invocations) }

// Phases of a measurement, in Progress.
const (
	PhaseCold = "cold"
	PhaseWarm = "warm"
)

// Progress is one measured invocation, streamed while a tune runs.
type Progress struct {
	MemoryMB int     `json:"memory_mb"`
	Phase    string  `json:"phase"`    // cold or warm
	N        int     `json:"n"`        // 1-based within the phase at this size
	Of       int     `json:"of"`       // the phase's count at this size
	Step     int     `json:"step"`     // 1-based over the whole plan
	Steps    int     `json:"steps"`    // Plan.Steps()
	MS       float64 `json:"ms"`       // what this one measured
	InitMS   float64 `json:"init_ms"`  // cold: the instance's init
	Instance string  `json:"instance"` // the temporary instance it ran on
	Pid      int     `json:"pid"`      // its process
}
