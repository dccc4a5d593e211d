package keepalive

import (
	"math/rand/v2"
	"testing"
	"time"
)

// What a policy costs per request in the pool: Arrived, Finished and Plan
// (twice, as the pool asks after each), on a stream of 10 ms requests with
// exponential gaps of mean 2 s, time advancing as in the pool. The
// decision itself is amortised: adaptive's window search runs on the
// first 64 quiet moments, then after 1/16 more samples or a minute.
//
//	go test -run XXX -bench PerRequest ./internal/keepalive/
func BenchmarkPerRequest(b *testing.B) {
	for _, spec := range []string{"fixed:10m", "hybrid", "adaptive"} {
		b.Run(spec, func(b *testing.B) {
			s, _ := ParseSpec(spec)
			p := s.New(Function{MemoryMB: 128})
			r := rand.New(rand.NewPCG(1, 2))
			t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var sink Plan
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t = t.Add(time.Duration(r.ExpFloat64() * float64(2*time.Second)))
				p.Arrived(t, 0)
				sink = p.Plan(t)
				t = t.Add(10 * time.Millisecond)
				p.Finished(t, 0)
				sink = p.Plan(t)
			}
			_ = sink
		})
	}
}
