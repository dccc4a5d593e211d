package simulate

import (
	"fmt"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stokehq/stoke/internal/keepalive"
)

// Policy is one policy a simulation runs: a keep_alive spec and a keep_warm
// floor. "keep_warm:N" is keep_warm N with fixed:10m above it (the default
// idle_timeout).
type Policy struct {
	Name     string
	Spec     keepalive.Spec
	KeepWarm int
	// make, when set, makes the policy instead of Spec (tests try parameters).
	make func(keepalive.Function) keepalive.Policy
}

// Fixed10m is the baseline every report compares wasted memory with.
const Fixed10m = "fixed:10m"

// DefaultPolicies is --policy's default.
const DefaultPolicies = "fixed:10m,hybrid,adaptive"

// ParsePolicies reads a comma-separated list: fixed:<duration>, hybrid,
// adaptive, keep_warm:<N>.
func ParsePolicies(s string) ([]Policy, error) {
	var out []Policy
	seen := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		var p Policy
		if n, ok := strings.CutPrefix(name, "keep_warm:"); ok {
			k, err := strconv.Atoi(n)
			if err != nil || k < 0 || k > 1000 {
				return nil, fmt.Errorf("--policy %s: keep_warm:N wants N from 0 to 1000", name)
			}
			p = Policy{Name: "keep_warm:" + strconv.Itoa(k), Spec: keepalive.Spec{Kind: keepalive.KindFixed, Fixed: 10 * time.Minute}, KeepWarm: k}
		} else {
			spec, err := keepalive.ParseSpec(name)
			if err != nil {
				return nil, fmt.Errorf("--policy: %w; or keep_warm:N", err)
			}
			p = Policy{Name: name, Spec: spec}
		}
		if seen[p.Name] {
			continue
		}
		seen[p.Name] = true
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--policy: no policy named; allowed: fixed:<duration>, hybrid, adaptive, keep_warm:N")
	}
	return out, nil
}

// Options configure Run.
type Options struct {
	Policies []Policy
	// BudgetMB is the node's memory budget (0: none). With a budget every
	// function shares one simulation; without, functions run independently,
	// in parallel.
	BudgetMB int
}

// Report is `stoke simulate`'s answer; its JSON is the documented shape.
type Report struct {
	Functions   int            `json:"functions"`
	Invocations int            `json:"invocations"`
	Policies    []PolicyReport `json:"policies"`
}

// PolicyReport is one policy's outcome over the whole trace.
type PolicyReport struct {
	Policy       string  `json:"policy"`
	Invocations  int     `json:"invocations"`
	ColdStarts   int     `json:"cold_starts"`
	ColdStartPct float64 `json:"cold_start_pct"`
	// AppColdStartPctP75 is the 75th percentile over functions of each
	// function's cold-start percentage (linear interpolation between ranks).
	AppColdStartPctP75 float64 `json:"app_cold_start_pct_p75"`
	// WastedMemoryGBs is memory × time of instances warm while idle (GB of
	// 1024 MB).
	WastedMemoryGBs  float64 `json:"wasted_memory_gb_s"`
	WastedVsFixed10m float64 `json:"wasted_memory_vs_fixed_10m"`
	Prewarms         int     `json:"prewarms"`
	PrewarmsUnused   int     `json:"prewarms_unused"`
}

// Run simulates every policy over the trace's functions that have
// invocations. fixed:10m runs as the baseline even when not asked for.
func Run(tr *Trace, o Options) *Report {
	var fns []*Function
	inv := 0
	for i := range tr.Functions {
		if n := tr.Functions[i].Invocations(); n > 0 {
			fns = append(fns, &tr.Functions[i])
			inv += n
		}
	}
	rep := &Report{Functions: len(fns), Invocations: inv}
	nodeMB := tr.MeanMemoryMB()
	pols := o.Policies
	base := -1
	for i, p := range pols {
		if p.Spec.Kind == keepalive.KindFixed && p.Spec.Fixed == 10*time.Minute && p.KeepWarm == 0 {
			base = i
		}
	}
	if base < 0 {
		b, _ := ParsePolicies(Fixed10m)
		pols = append(append([]Policy(nil), pols...), b[0])
		base = len(pols) - 1
	}
	results := make([][]FunctionResult, len(pols))
	for i := range results {
		results[i] = make([]FunctionResult, len(fns))
	}
	if o.BudgetMB > 0 {
		var wg sync.WaitGroup
		for i, p := range pols {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = runTogether(fns, p, o.BudgetMB, tr.Length, nodeMB)
			}()
		}
		wg.Wait()
	} else {
		runApart(fns, pols, results, tr.Length, nodeMB)
	}
	var baseWaste float64
	for _, r := range results[base] {
		baseWaste += r.WastedMBs
	}
	for i, p := range pols {
		if i == base && base >= len(o.Policies) {
			continue
		}
		rep.Policies = append(rep.Policies, summarize(p.Name, results[i], baseWaste))
	}
	return rep
}

func summarize(name string, rs []FunctionResult, baseWasteMBs float64) PolicyReport {
	pr := PolicyReport{Policy: name}
	var waste float64
	pcts := make([]float64, 0, len(rs))
	for _, r := range rs {
		pr.Invocations += r.Invocations
		pr.ColdStarts += r.ColdStarts
		pr.Prewarms += r.Prewarms
		pr.PrewarmsUnused += r.PrewarmsUnused
		waste += r.WastedMBs
		if r.Invocations > 0 {
			pcts = append(pcts, 100*float64(r.ColdStarts)/float64(r.Invocations))
		}
	}
	if pr.Invocations > 0 {
		pr.ColdStartPct = 100 * float64(pr.ColdStarts) / float64(pr.Invocations)
	}
	pr.AppColdStartPctP75 = Percentile(pcts, 0.75)
	pr.WastedMemoryGBs = waste / 1024
	if baseWasteMBs > 0 {
		pr.WastedVsFixed10m = waste / baseWasteMBs
	} else if waste == 0 {
		pr.WastedVsFixed10m = 1
	}
	return pr
}

// Percentile is the q quantile of xs with linear interpolation between the
// closest ranks (NumPy's default); 0 for none.
func Percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
}

// runApart simulates each (policy, function) pair on its own, on every CPU.
func runApart(fns []*Function, pols []Policy, results [][]FunctionResult, length time.Duration, nodeMB int) {
	type job struct{ p, f int }
	jobs := make(chan job, 256)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []Arrival
			for j := range jobs {
				buf = fns[j.f].Expand(buf)
				results[j.p][j.f] = simulateOne(fns[j.f], buf, pols[j.p], length, nodeMB, nil)
			}
		}()
	}
	// Function-major, so each worker expands a function's arrivals while
	// another may be on the same function's other policies.
	for f := range fns {
		for p := range pols {
			jobs <- job{p, f}
		}
	}
	close(jobs)
	wg.Wait()
}

// simulateOne runs one function alone under one policy; record, when set,
// is told every plan.
func simulateOne(f *Function, arr []Arrival, p Policy, length time.Duration, nodeMB int, record func(Decision)) FunctionResult {
	fn := newFnState(f, arr, p, nodeMB)
	fn.record = record
	e := &engine{end: length}
	e.run([]*fnState{fn})
	return fn.res
}

func newFnState(f *Function, arr []Arrival, p Policy, nodeMB int) *fnState {
	kf := keepalive.Function{MemoryMB: f.MemoryMB, NodeMemoryMB: nodeMB, Init: f.Init}
	pol := p.Spec.New(kf)
	if p.make != nil {
		pol = p.make(kf)
	}
	return &fnState{f: f, pol: pol, keepWarm: p.KeepWarm, arr: arr}
}

// runTogether runs every function in one simulation under a node budget.
func runTogether(fns []*Function, p Policy, budgetMB int, length time.Duration, nodeMB int) []FunctionResult {
	e := &engine{end: length, budget: keepalive.NewBudget[*inst](budgetMB)}
	st := make([]*fnState, len(fns))
	for i, f := range fns {
		st[i] = newFnState(f, f.Expand(nil), p, nodeMB)
	}
	e.run(st)
	out := make([]FunctionResult, len(fns))
	for i, s := range st {
		out[i] = s.res
	}
	return out
}

// MeanMemoryMB is the mean memory size of the trace's functions: the node's
// mean, as the adaptive policy sees it (from configuration, not traffic).
func (tr *Trace) MeanMemoryMB() int {
	if len(tr.Functions) == 0 {
		return 0
	}
	sum := 0
	for _, f := range tr.Functions {
		sum += f.MemoryMB
	}
	return sum / len(tr.Functions)
}
