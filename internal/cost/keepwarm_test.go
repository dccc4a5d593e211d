package cost

import (
	"testing"
	"time"
)

func TestNewAdvicePricesKeepWarm(t *testing.T) {
	a := lambda.NewAdvice(2, 512, 6, 18)
	if a.KeepWarm != 2 || a.ColdStarts != 6 || a.Recorded != 18 || a.Removed != 12 {
		t.Errorf("advice %+v", a)
	}
	// 2 × 0.5 GB × 86400 s × $0.0000041667.
	if !near(a.PerDay, 2*0.5*86400*0.0000041667) {
		t.Errorf("keep_warm 2 per day: %v", a.PerDay)
	}
	if a := lambda.NewAdvice(0, 512, 20, 18); a.Removed != 0 {
		t.Errorf("a replay with more cold starts than recorded removes none: %+v", a)
	}
}

func TestPriceKeepAlive(t *testing.T) {
	k := KeepAlive{ColdStarts: 3, BaselineColdStarts: 10, IdleGBSeconds: 1000, BaselineIdleGBs: 4000, LiveIdleGBSeconds: 500}
	lambda.PriceKeepAlive(&k, 800*time.Millisecond, 2048)
	if k.Saved != 7 || !near(k.SavedCost, 7*0.8*2*0.0000166667) {
		t.Errorf("saved %d for $%v; want 7 cold starts of 0.8 s × 2 GB at the duration price", k.Saved, k.SavedCost)
	}
	if !near(k.IdleCost, 1000*0.0000041667) || !near(k.BaselineIdleCost, 4000*0.0000041667) || !near(k.LiveIdleCost, 500*0.0000041667) {
		t.Errorf("idle priced %+v; want GB-s at the keep-warm price", k)
	}
}
