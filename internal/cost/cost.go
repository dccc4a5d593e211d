// Package cost prices invocations the way AWS Lambda bills them: requests,
// billed duration × memory, init time on cold starts, and keep_warm
// instances priced like provisioned concurrency. It is pure arithmetic on
// records and prices; the store sums, the server asks, the CLI prints.
package cost

import (
	"math"
	"strconv"
	"time"

	"github.com/stokehq/stoke/internal/record"
)

// Prices is billing: from stoke.yaml (config.Billing), in dollars.
type Prices struct {
	Granularity         time.Duration `json:"granularity"`                   // billed durations are rounded up to it
	PerGBSecond         float64       `json:"price_per_gb_second"`           // duration (and init) price
	PerRequest          float64       `json:"price_per_request"`             // per invocation that reached an instance
	BillInit            bool          `json:"bill_init"`                     // Lambda bills init since 2025-08-01
	KeepWarmPerGBSecond float64       `json:"keep_warm_price_per_gb_second"` // per second an instance is kept warm
}

// GBSeconds is the GB-seconds of ms milliseconds at memoryMB (1 GB = 1024 MB,
// as Lambda counts).
func GBSeconds(ms float64, memoryMB int) float64 {
	return ms / 1000 * float64(memoryMB) / 1024
}

// Invocation is one invocation's cost, split as Lambda's bill splits it.
type Invocation struct {
	Request, Duration, Init float64
	GBSeconds               float64 // billed duration plus, when billed, billed init
}

// Total is the invocation's whole cost.
func (c Invocation) Total() float64 { return c.Request + c.Duration + c.Init }

// Billable reports whether Lambda would charge for r at all: a request that
// never reached an instance (throttled, timed out in the queue, init failed
// before it) is not an invocation on the bill.
func Billable(r *record.Record) bool { return r.InstanceID != "" }

// ThrottledErrorType is a record's ErrorType when the request was refused
// with 429 (max_instances busy, queue full), as Lambda names it.
const ThrottledErrorType = "TooManyRequestsException"

// Invocation prices one record: billed ms × memory at the duration price,
// the request charge, and on a cold start with BillInit the init time
// rounded up to the granularity at the same price.
func (p Prices) Invocation(r *record.Record) Invocation {
	if !Billable(r) {
		return Invocation{}
	}
	gbs := GBSeconds(float64(r.BilledMS), r.MemoryMB)
	c := Invocation{Request: p.PerRequest, Duration: gbs * p.PerGBSecond, GBSeconds: gbs}
	if ms := p.InitBilledMS(r); ms > 0 {
		igbs := GBSeconds(float64(ms), r.MemoryMB)
		c.Init = igbs * p.PerGBSecond
		c.GBSeconds += igbs
	}
	return c
}

// InitBilledMS is r's billed init time: 0 unless r was cold and init is
// billed, else InitMS rounded up to the granularity.
func (p Prices) InitBilledMS(r *record.Record) int64 {
	if !p.BillInit || !r.Cold || r.InitMS <= 0 {
		return 0
	}
	return record.Billed(time.Duration(r.InitMS*float64(time.Millisecond)), p.Granularity)
}

// KeepWarm is the cost of keeping n instances of memoryMB warm for d.
func (p Prices) KeepWarm(n, memoryMB int, d time.Duration) float64 {
	if n <= 0 || d <= 0 {
		return 0
	}
	return float64(n) * GBSeconds(float64(d.Milliseconds()), memoryMB) * p.KeepWarmPerGBSecond
}

// Usage is what the store sums over a function's records in a window.
type Usage struct {
	Function    string
	Invocations int64   // every record, throttled ones included
	Billable    int64   // records that reached an instance: the request charge
	ColdStarts  int64   // billable records that waited for an init
	Throttles   int64   // answered 429 because max_instances and the queue were full
	BilledMBMS  float64 // Σ billed_ms × memory_mb
	InitMBMS    float64 // Σ init ms rounded up to the granularity × memory_mb, cold starts only
	// Nearest-rank percentiles of DurationMS over billable records.
	DurationP50, DurationP95, DurationP99 float64
}

// Summary is one function's line of `stoke cost`.
type Summary struct {
	Function     string  `json:"function"`
	MemoryMB     int     `json:"memory_mb,omitempty"` // as deployed now (0: not deployed)
	KeepWarm     int     `json:"keep_warm"`           // as deployed now
	Invocations  int64   `json:"invocations"`
	ColdStarts   int64   `json:"cold_starts"`
	Throttles    int64   `json:"throttles"`
	GBSeconds    float64 `json:"gb_seconds"` // billed: duration, plus init when billed
	RequestCost  float64 `json:"request_cost"`
	DurationCost float64 `json:"duration_cost"`
	InitCost     float64 `json:"init_cost"`
	KeepWarmCost float64 `json:"keep_warm_cost"`
	// KeepWarmSince is when KeepWarmCost starts: the window's start, or
	// when the function was deployed on this server if later.
	KeepWarmSince time.Time `json:"keep_warm_since,omitzero"`
	Total         float64   `json:"total"`
	DurationP50   float64   `json:"duration_p50_ms"`
	DurationP95   float64   `json:"duration_p95_ms"`
	DurationP99   float64   `json:"duration_p99_ms"`
	Advice        []Advice  `json:"keep_warm_advice,omitempty"`
	// KeepAlive is the keep-alive policy's idle memory and saved cold
	// starts (a deployed function with invocations in the window).
	KeepAlive *KeepAlive `json:"keep_alive,omitempty"`
}

// Summarize prices u. keepWarmFor is how long the function's keep_warm
// instances were up within the window; the caller knows (the server's
// uptime), the records do not.
func (p Prices) Summarize(u Usage, memoryMB, keepWarm int, keepWarmFor time.Duration) Summary {
	s := Summary{
		Function: u.Function, MemoryMB: memoryMB, KeepWarm: keepWarm,
		Invocations: u.Invocations, ColdStarts: u.ColdStarts, Throttles: u.Throttles,
		GBSeconds:    u.BilledMBMS / 1000 / 1024,
		RequestCost:  float64(u.Billable) * p.PerRequest,
		DurationP50:  u.DurationP50,
		DurationP95:  u.DurationP95,
		DurationP99:  u.DurationP99,
		KeepWarmCost: p.KeepWarm(keepWarm, memoryMB, keepWarmFor),
	}
	s.DurationCost = s.GBSeconds * p.PerGBSecond
	if p.BillInit {
		initGBs := u.InitMBMS / 1000 / 1024
		s.InitCost = initGBs * p.PerGBSecond
		s.GBSeconds += initGBs
	}
	s.Total = s.RequestCost + s.DurationCost + s.InitCost + s.KeepWarmCost
	return s
}

// Power Tuning's cost model (AWS Lambda Power Tuning, x86), for comparing
// with its reports: the request charge is left out.

// PowerTuningCost is its per-invocation cost since 1 ms billing:
// ceil(billed ms) × 2.1e-9 × memory/128.
func PowerTuningCost(durationMS float64, memoryMB int) float64 {
	return math.Ceil(durationMS) * 2.1e-9 * float64(memoryMB) / 128
}

// PowerTuningCost100ms is the same before December 2020, in 100 ms steps:
// ceil(ms/100) × 2.083e-7 × memory/128.
func PowerTuningCost100ms(durationMS float64, memoryMB int) float64 {
	return math.Ceil(durationMS/100) * 2.083e-7 * float64(memoryMB) / 128
}

// Dollars formats v with enough decimals to show three significant digits
// of a tiny cost ($0.000000417) and cents from 10 cents up ($12.34).
func Dollars(v float64) string {
	if v == 0 {
		return "$0"
	}
	dec := 2
	if a := math.Abs(v); a < 0.1 {
		dec = max(2, 2-int(math.Floor(math.Log10(a))))
	}
	return "$" + strconv.FormatFloat(v, 'f', min(dec, 15), 64)
}
