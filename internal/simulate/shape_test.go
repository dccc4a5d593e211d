package simulate

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"
)

// The arrival-shape statistics docs/keepalive.md quotes for the generator
// and for the shared Azure sample: per popularity class, the share of
// functions whose inter-arrival times have a coefficient of variation
// (CV) near 0 (periodic: timers), the median CV (Shahrad et al. 2020,
// Fig. 6: 0 for a timer, 1 for Poisson, above 1 for bursts), and how many
// invocations an active minute holds.

// popularity classes by invocations per day, as in the paper's Fig. 5a.
var shapeClasses = [3]struct {
	name   string
	lo, hi int
}{{"at most hourly", 1, 24}, {"hourly to once a minute", 25, 1440}, {"more than once a minute", 1441, math.MaxInt}}

type classShape struct {
	functions int     // in the class
	measured  int     // with at least 4 invocations (3 inter-arrival times)
	periodic  float64 // share of measured with CV < 0.1
	medianCV  float64
	// perActive is the median over measured functions of invocations per
	// minute that has any.
	perActive float64
}

// iatCV is the CV of a function's inter-arrival times, from its per-minute
// counts with a minute's invocations spread evenly over it (the finest the
// Azure day files allow); NaN below 4 invocations.
func iatCV(pm []int32) float64 {
	var ts []float64
	for m, c := range pm {
		for i := 0; i < int(c); i++ {
			ts = append(ts, float64(m)+(0.5+float64(i))/float64(c))
		}
	}
	if len(ts) < 4 {
		return math.NaN()
	}
	n := float64(len(ts) - 1)
	mean := (ts[len(ts)-1] - ts[0]) / n
	var ss float64
	for i := 1; i < len(ts); i++ {
		d := ts[i] - ts[i-1] - mean
		ss += d * d
	}
	return math.Sqrt(ss/n) / mean
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func shapeOf(tr *Trace) [3]classShape {
	var out [3]classShape
	for k, c := range shapeClasses {
		var cvs, per []float64
		periodic := 0
		for i := range tr.Functions {
			f := &tr.Functions[i]
			n := f.Invocations()
			if n < c.lo || n > c.hi {
				continue
			}
			out[k].functions++
			cv := iatCV(f.PerMinute)
			if math.IsNaN(cv) {
				continue
			}
			cvs = append(cvs, cv)
			if cv < 0.1 {
				periodic++
			}
			active := 0
			for _, x := range f.PerMinute {
				if x > 0 {
					active++
				}
			}
			per = append(per, float64(n)/float64(active))
		}
		out[k].measured = len(cvs)
		if len(cvs) > 0 {
			out[k].periodic = float64(periodic) / float64(len(cvs))
		}
		out[k].medianCV, out[k].perActive = median(cvs), median(per)
	}
	return out
}

func logShape(t *testing.T, name string, s [3]classShape) {
	t.Helper()
	for k, c := range s {
		t.Logf("%-22s %-24s %4d functions, %4d with ≥4 invocations: CV<0.1 %5.1f %%, median CV %.2f, median invocations per active minute %.1f",
			name, shapeClasses[k].name, c.functions, c.measured, 100*c.periodic, c.medianCV, c.perActive)
	}
}

// The generator's rarely invoked functions are periodic about as often as
// the shared Azure sample's (22.6 % of those with ≥4 invocations there):
// timers are 16 % of functions, drawn independently of popularity.
func TestGeneratorShape(t *testing.T) {
	s := shapeOf(Generate(3000, 11, DefaultInit))
	logShape(t, "generated 3000/11", s)
	if p := s[0].periodic; p < 0.15 || p > 0.35 {
		t.Fatalf("at most hourly: %.1f %% periodic (CV < 0.1); the sample has 22.6 %%", 100*p)
	}
	if cv := s[0].medianCV; cv < 0.5 || cv > 1.5 {
		t.Fatalf("at most hourly: median CV %.2f; the sample's is 1.02", cv)
	}
}

// The generator's trigger mix is the paper's (Fig. 2) both in functions
// (timers 16 %, queue and event 17 %) and in invocations (queue and event
// 59 %; a day's share swings with its few busiest functions).
func TestGeneratorTriggerMix(t *testing.T) {
	for _, seed := range []int64{21, 22, 23} {
		tr := Generate(2000, seed, DefaultInit)
		fns := map[string]float64{}
		inv := map[string]float64{}
		var total float64
		for i := range tr.Functions {
			f := &tr.Functions[i]
			n := float64(f.Invocations())
			fns[f.Trigger]++
			inv[f.Trigger] += n
			total += n
		}
		n := float64(len(tr.Functions))
		t.Logf("seed %d: functions timer %.1f %%, queue/event %.1f %%; invocations queue/event %.1f %%, http %.1f %%, timer %.2f %%",
			seed, 100*fns["timer"]/n, 100*fns["queue"]/n, 100*inv["queue"]/total, 100*inv["http"]/total, 100*inv["timer"]/total)
		if x := fns["timer"] / n; x < 0.13 || x > 0.19 {
			t.Errorf("seed %d: timers are %.1f %% of functions (paper: 16 %%)", seed, 100*x)
		}
		if x := fns["queue"] / n; x < 0.14 || x > 0.20 {
			t.Errorf("seed %d: queue/event are %.1f %% of functions (paper: 17 %%)", seed, 100*x)
		}
		if x := inv["queue"] / total; x < 0.40 || x > 0.80 {
			t.Errorf("seed %d: queue/event make %.1f %% of invocations (paper: 59 %%)", seed, 100*x)
		}
	}
}

// TestSharedSample measures the shared 200-function Azure sample the way
// TestGeneratorShape measures the generator, and swaps what decides whether
// hybrid wastes less memory than fixed:10m (BENCHMARKS.md): the sample's
// arrivals under the paper's execution times and memory (drawn as the
// generator draws them), and generated arrivals under the sample's. Set
// STOKE_TRACES to the directory of 200_inv.csv, 200_run.csv, 200_mem.csv.
func TestSharedSample(t *testing.T) {
	dir := os.Getenv("STOKE_TRACES")
	if dir == "" {
		t.Skip("STOKE_TRACES (the directory of the shared Azure sample) not set")
	}
	read := func() *Trace {
		tr, err := ReadAzure(AzureFiles{
			Invocations: filepath.Join(dir, "200_inv.csv"),
			Durations:   filepath.Join(dir, "200_run.csv"),
			Memory:      filepath.Join(dir, "200_mem.csv"),
		}, 1, DefaultInit)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	sample := read()
	logShape(t, "shared sample", shapeOf(sample))
	for _, seed := range []int64{1, 2, 3} {
		logShape(t, "generated 1000/"+string(rune('0'+seed)), shapeOf(Generate(1000, seed, DefaultInit)))
	}
	var durs, mems []float64
	for _, f := range sample.Functions {
		durs, mems = append(durs, f.Duration.Seconds()), append(mems, float64(f.MemoryMB))
	}
	t.Logf("shared sample: median average execution time %.2f s (paper's fit: 0.68 s), median memory %.0f MB (paper's fit: 140 MB)", median(durs), median(mems))

	pols, err := ParsePolicies("fixed:10m,hybrid,adaptive")
	if err != nil {
		t.Fatal(err)
	}
	// hybridVsFixed simulates each function alone (as Run does without a
	// budget) and logs each policy's p75 and wasted memory, overall and per
	// popularity class; it returns hybrid's wasted memory over fixed:10m's.
	hybridVsFixed := func(name string, tr *Trace) float64 {
		nodeMB := tr.MeanMemoryMB()
		var waste [3][4]float64 // policy × class (3: all)
		pcts := make([][]float64, len(pols))
		var mu sync.Mutex
		var wg sync.WaitGroup
		next := make(chan *Function)
		for w := 0; w < runtime.GOMAXPROCS(0); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for f := range next {
					n := f.Invocations()
					k := 0
					for k < 2 && n > shapeClasses[k].hi {
						k++
					}
					arr := f.Expand(nil)
					for p := range pols {
						res := simulateOne(f, arr, pols[p], tr.Length, nodeMB, nil)
						mu.Lock()
						waste[p][k] += res.WastedMBs / 1024
						waste[p][3] += res.WastedMBs / 1024
						pcts[p] = append(pcts[p], 100*float64(res.ColdStarts)/float64(n))
						mu.Unlock()
					}
				}
			}()
		}
		for i := range tr.Functions {
			if tr.Functions[i].Invocations() > 0 {
				next <- &tr.Functions[i]
			}
		}
		close(next)
		wg.Wait()
		for p, pol := range pols {
			t.Logf("%-44s %-9s p75 %6.2f  wasted %12.0f GB-s (%.2f× fixed:10m); by class %.2f× / %.2f× / %.2f×",
				name, pol.Name, Percentile(pcts[p], 0.75), waste[p][3], waste[p][3]/waste[0][3],
				waste[p][0]/waste[0][0], waste[p][1]/waste[0][1], waste[p][2]/waste[0][2])
		}
		t.Logf("%-44s fixed:10m's waste by class: %.0f %% / %.0f %% / %.0f %%", name,
			100*waste[0][0]/waste[0][3], 100*waste[0][1]/waste[0][3], 100*waste[0][2]/waste[0][3])
		return waste[1][3] / waste[0][3]
	}
	if r := hybridVsFixed("sample as it is", sample); r >= 1 {
		t.Errorf("sample: hybrid wastes %.2f× fixed:10m", r)
	}
	paper := read()
	r := rand.New(rand.NewPCG(42, 1))
	for i := range paper.Functions {
		paper.Functions[i].MemoryMB = burrMB(r)
		paper.Functions[i].Duration = lognormalDuration(r)
	}
	if r := hybridVsFixed("sample arrivals, paper's times and memory", paper); r <= 1 {
		t.Errorf("sample arrivals under the paper's times and memory: hybrid wastes %.2f× fixed:10m, expected more", r)
	}
	if r := hybridVsFixed("generated 1000/2 as generated", Generate(1000, 2, DefaultInit)); r >= 1 {
		t.Logf("generated 1000/2: hybrid wastes %.2f× fixed:10m", r)
	}
	for _, seed := range []int64{2, 3} {
		gen := Generate(1000, seed, DefaultInit)
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		for i := range gen.Functions {
			src := sample.Functions[r.IntN(len(sample.Functions))]
			gen.Functions[i].MemoryMB, gen.Functions[i].Duration = src.MemoryMB, src.Duration
		}
		if x := hybridVsFixed("generated 1000/"+string(rune('0'+seed))+" arrivals, sample's times and memory", gen); x >= 1 {
			t.Errorf("generated arrivals under the sample's times and memory: hybrid wastes %.2f× fixed:10m, expected less", x)
		}
	}
}
