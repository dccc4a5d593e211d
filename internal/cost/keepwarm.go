package cost

import "time"

// What keeping instances warm costs and saves. The replays that produce
// these numbers run the pool's own keep-alive code (package simulate); this
// file only holds their results and prices them.

// Arrival is one recorded invocation, as a replay needs it.
type Arrival struct {
	Start      time.Time
	DurationMS float64
	InitMS     float64 // when Cold
	Cold       bool
}

// Advice is what keeping n instances warm (under the function's keep-alive
// policy) would have done to recorded traffic, replayed, and what it costs.
type Advice struct {
	KeepWarm   int `json:"keep_warm"`
	ColdStarts int `json:"cold_starts"` // replayed with KeepWarm instances
	Recorded   int `json:"recorded"`    // cold starts in the records
	// Removed is how many fewer cold starts the replay has than the
	// records: max(Recorded − ColdStarts, 0).
	Removed int     `json:"removed"`
	PerDay  float64 `json:"cost_per_day"`
}

// KeepWarmChoices are the keep_warm values `stoke cost` advises on.
var KeepWarmChoices = []int{0, 1, 2, 3, 5}

// NewAdvice prices keep_warm n at memoryMB given a replay's cold starts.
func (p Prices) NewAdvice(n, memoryMB, replayed, recorded int) Advice {
	return Advice{KeepWarm: n, ColdStarts: replayed, Recorded: recorded, Removed: max(recorded-replayed, 0),
		PerDay: p.KeepWarm(n, memoryMB, 24*time.Hour)}
}

// KeepAlive is what a function's keep-alive policy did with the window's
// traffic, replayed, against Lambda's fixed 10-minute keep-alive replayed
// on the same arrivals: the idle memory each kept and the cold starts the
// policy saved, priced. Idle memory is priced at the keep-warm price (what
// holding an initialised instance costs); a saved cold start at its init
// time billed at the duration price (what Lambda bills for an init).
type KeepAlive struct {
	Policy string `json:"policy"`
	// Since is where the replay starts: the window's start, or when the
	// function was deployed on this server if later (its first recorded
	// arrival, if earlier still). Its keep_warm instances are idle from
	// then, as the keep-warm column charges them.
	Since              time.Time `json:"since"`
	ColdStarts         int       `json:"cold_starts"`
	BaselineColdStarts int       `json:"baseline_cold_starts"` // fixed:10m
	Saved              int       `json:"cold_starts_saved"`    // baseline − policy; negative: more
	SavedCost          float64   `json:"saved_cost"`           // Saved × init × memory at the duration price
	IdleGBSeconds      float64   `json:"idle_gb_seconds"`
	IdleCost           float64   `json:"idle_cost"`
	BaselineIdleGBs    float64   `json:"baseline_idle_gb_seconds"`
	BaselineIdleCost   float64   `json:"baseline_idle_cost"`
	Prewarms           int       `json:"prewarms"`
	// LiveIdleGBSeconds is what the running version's pool measured itself
	// since it was deployed (not the window's replay).
	LiveIdleGBSeconds float64 `json:"live_idle_gb_seconds"`
	LiveIdleCost      float64 `json:"live_idle_cost"`
}

// PriceKeepAlive fills in k's costs: idle GB-s at the keep-warm price, each
// saved cold start as init of memoryMB at the duration price.
func (p Prices) PriceKeepAlive(k *KeepAlive, init time.Duration, memoryMB int) {
	k.Saved = k.BaselineColdStarts - k.ColdStarts
	k.SavedCost = float64(k.Saved) * GBSeconds(float64(init.Milliseconds()), memoryMB) * p.PerGBSecond
	k.IdleCost = k.IdleGBSeconds * p.KeepWarmPerGBSecond
	k.BaselineIdleCost = k.BaselineIdleGBs * p.KeepWarmPerGBSecond
	k.LiveIdleCost = k.LiveIdleGBSeconds * p.KeepWarmPerGBSecond
}
