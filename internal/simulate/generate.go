package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Generate makes a one-day trace of n functions (one per app) shaped like
// the published statistics of the Azure Functions 2019 trace (Shahrad et
// al., "Serverless in the Wild", USENIX ATC 2020), so policies can be shown
// on traffic they were not tuned to. The seed picks the trace.
//
//   - Popularity (§3.3, Fig. 5a): 45 % of apps are invoked at most once an
//     hour on average and 81 % at most once a minute, over eight orders of
//     magnitude. A function's daily count is drawn log-uniformly within
//     three classes with those shares: 1–24, 24–1,440, and 1,440–720,000
//     (heavy-tailed: each decade holds about as many functions).
//   - Triggers (§3.2, Fig. 2): 16 % of functions are timers, 17 % queue and
//     event triggers, 67 % HTTP and the rest; and queue and event functions
//     make 59 % of the invocations, HTTP and the rest 39 %, timers 2 %. The
//     trigger is drawn given the popularity so that both shares hold (see
//     triggerShares); drawn independently of it, queue and event functions
//     made only 16–26 % of the invocations. Timers fire once per period at a
//     fixed second, the period the common cron interval nearest 1,440 min /
//     daily count, so they make about 0.1 % of the invocations, not 2 %
//     (Azure's timers can fire every few seconds). Queue and event
//     functions come in bursts: Poisson bursts of a geometric number of
//     invocations (mean 2–50) within one minute. The others are Poisson with
//     a diurnal swing of up to ±80 %.
//   - Execution time (Fig. 7): each function's average is log-normal with
//     μ = −0.38 and σ = 2.36 (seconds), capped at 10 minutes.
//   - Memory (Fig. 9): each app's average allocation is Burr XII with
//     c = 11.652, k = 0.221, λ = 107.083 MB, kept within 64–4,096 MB.
func Generate(n int, seed int64, init time.Duration) *Trace {
	r := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	tr := &Trace{Length: 24 * time.Hour}
	for i := 0; i < n; i++ {
		f := Function{
			Name:     fmt.Sprintf("gen%d-%05d", seed, i),
			MemoryMB: burrMB(r),
			Duration: lognormalDuration(r),
			Init:     init,
		}
		f.App = f.Name
		daily := dailyCount(r)
		timer, queue := triggerShares(daily)
		switch kind := r.Float64(); {
		case kind < timer:
			f.Trigger, f.PerMinute = "timer", timerMinutes(r, daily)
		case kind < timer+queue:
			f.Trigger, f.PerMinute = "queue", burstMinutes(r, daily)
		default:
			f.Trigger, f.PerMinute = "http", poissonMinutes(r, daily)
		}
		tr.Functions = append(tr.Functions, f)
	}
	tr.Place(seed)
	return tr
}

func logUniform(r *rand.Rand, lo, hi float64) float64 {
	return math.Exp(math.Log(lo) + r.Float64()*(math.Log(hi)-math.Log(lo)))
}

func dailyCount(r *rand.Rand) float64 {
	switch u := r.Float64(); {
	case u < 0.45:
		return logUniform(r, 1, 24)
	case u < 0.81:
		return logUniform(r, 24, 1440)
	default:
		return logUniform(r, 1440, 720_000)
	}
}

// triggerShares is the probability that a function invoked daily times a
// day is a timer, and that it is a queue/event function (else HTTP or
// another trigger). Functions invoked more than once a minute (19 % of
// them) make over 99 % of the invocations and cannot be timers (a cron
// timer fires at most once a minute), so their mix sets the invocation
// shares: queue/event with probability 59 / (59 + 39) = 0.60. The others
// then take what is left of the function shares: timers 16 % / 81 % =
// 0.1975, queue/event (17 % − 19 % × 0.60) / 81 % = 0.069.
func triggerShares(daily float64) (timer, queue float64) {
	if daily > 1440 {
		return 0, 0.60
	}
	return 0.1975, 0.069
}

var cronPeriods = []int{1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 240, 360, 720, 1440}

func timerMinutes(r *rand.Rand, daily float64) []int32 {
	want := 1440 / daily
	period := cronPeriods[0]
	for _, p := range cronPeriods {
		if math.Abs(math.Log(float64(p)/want)) < math.Abs(math.Log(float64(period)/want)) {
			period = p
		}
	}
	pm := make([]int32, 1440)
	for m := r.IntN(period); m < 1440; m += period {
		pm[m] = 1
	}
	return pm
}

// diurnal is the rate multiplier at minute m: 1 ± swing, peak at phase.
func diurnal(m int, swing, phase float64) float64 {
	return 1 + swing*math.Sin(2*math.Pi*(float64(m)/1440-phase))
}

func poissonMinutes(r *rand.Rand, daily float64) []int32 {
	swing, phase := 0.8*r.Float64(), r.Float64()
	pm := make([]int32, 1440)
	for m := range pm {
		pm[m] = int32(poisson(r, daily/1440*diurnal(m, swing, phase)))
	}
	return pm
}

func burstMinutes(r *rand.Rand, daily float64) []int32 {
	mean := logUniform(r, 2, 50)
	bursts := daily / mean
	swing, phase := 0.8*r.Float64(), r.Float64()
	pm := make([]int32, 1440)
	for m := range pm {
		for b := poisson(r, bursts/1440*diurnal(m, swing, phase)); b > 0; b-- {
			// Geometric with mean `mean` (at least 1).
			size := 1 + int(math.Floor(math.Log(1-r.Float64())/math.Log(1-1/mean)))
			pm[m] += int32(min(size, 100_000))
		}
	}
	return pm
}

// poisson draws a Poisson count of mean lambda (normal approximation above 50).
func poisson(r *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > 50 {
		return max(0, int(math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64())))
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func lognormalDuration(r *rand.Rand) time.Duration {
	s := math.Exp(-0.38 + 2.36*r.NormFloat64())
	return time.Duration(min(s, 600) * float64(time.Second))
}

func burrMB(r *rand.Rand) int {
	const c, k, lambda = 11.652, 0.221, 107.083
	u := r.Float64()
	x := lambda * math.Pow(math.Pow(1-u, -1/k)-1, 1/c)
	return int(math.Round(min(max(x, 64), 4096)))
}
