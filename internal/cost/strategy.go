package cost

import (
	"errors"
	"fmt"
	"math"
)

// Point is one memory size as measured: its typical duration and the cost
// of one invocation at it.
type Point struct {
	MemoryMB   int     `json:"memory_mb"`
	DurationMS float64 `json:"duration_ms"`
	Cost       float64 `json:"cost"`
}

// Strategies, as AWS Lambda Power Tuning names them.
const (
	StrategyCost     = "cost"     // cheapest; ties broken by speed
	StrategySpeed    = "speed"    // fastest; ties broken by cost
	StrategyBalanced = "balanced" // minimise w·cost/maxCost + (1−w)·time/maxTime
)

// Pick chooses a memory size from points by strategy; weight is balanced's
// w in [0, 1] (1: cost only, 0: speed only). Remaining ties go to the smaller
// memory size. Costs are compared with a relative tolerance: 200 ms × 128 MB
// and 100 ms × 256 MB are the same price, but not always the same float.
func Pick(points []Point, strategy string, weight float64) (Point, error) {
	if len(points) == 0 {
		return Point{}, errors.New("cost: no measurements to choose from")
	}
	var score func(Point) (float64, float64)
	switch strategy {
	case StrategyCost:
		score = func(p Point) (float64, float64) { return p.Cost, p.DurationMS }
	case StrategySpeed:
		score = func(p Point) (float64, float64) { return p.DurationMS, p.Cost }
	case StrategyBalanced:
		if weight < 0 || weight > 1 || math.IsNaN(weight) {
			return Point{}, fmt.Errorf("cost: balanced weight %v; allowed: 0 to 1", weight)
		}
		var maxCost, maxTime float64
		for _, p := range points {
			maxCost, maxTime = max(maxCost, p.Cost), max(maxTime, p.DurationMS)
		}
		score = func(p Point) (float64, float64) {
			return weight*ratio(p.Cost, maxCost) + (1-weight)*ratio(p.DurationMS, maxTime), 0
		}
	default:
		return Point{}, fmt.Errorf("cost: unknown strategy %q; allowed: cost, speed, balanced", strategy)
	}
	best := points[0]
	for _, p := range points[1:] {
		a1, a2 := score(p)
		b1, b2 := score(best)
		switch {
		case less(a1, b1):
		case less(b1, a1):
			continue
		case less(a2, b2):
		case less(b2, a2):
			continue
		case p.MemoryMB < best.MemoryMB:
		default:
			continue
		}
		best = p
	}
	return best, nil
}

func ratio(v, maxV float64) float64 {
	if maxV == 0 {
		return 0
	}
	return v / maxV
}

// less is a < b beyond floating-point noise.
func less(a, b float64) bool {
	return a < b && b-a > 1e-9*max(math.Abs(a), math.Abs(b))
}
