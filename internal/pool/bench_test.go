package pool_test

import (
	"testing"

	"github.com/stokehq/stoke/internal/keepalive"
	"github.com/stokehq/stoke/internal/pool"
)

// The warm request path with each keep-alive policy deciding on every
// request, in one run (sub-benchmarks interleave with -count): a request
// acquires a warm instance (the policy is told of the arrival), is served
// by the real instance over HTTP, and releases it (told of the end, asked
// for a plan). fixed:10m is the baseline: it decides nothing.
//
//	go test -run XXX -bench WarmPath -count 10 ./internal/pool/
func BenchmarkWarmPath(b *testing.B) {
	benchPolicies(b, func(b *testing.B, p *pool.Pool) {
		l := acquire(b, p)
		call(b, l, "")
		l.Release()
	})
}

// The policy's share alone: acquire and release with no request between.
func BenchmarkAcquireRelease(b *testing.B) {
	benchPolicies(b, func(b *testing.B, p *pool.Pool) {
		acquire(b, p).Release()
	})
}

func benchPolicies(b *testing.B, op func(*testing.B, *pool.Pool)) {
	for _, spec := range []string{"fixed:10m", "hybrid", "adaptive"} {
		b.Run(spec, func(b *testing.B) {
			s, err := keepalive.ParseSpec(spec)
			if err != nil {
				b.Fatal(err)
			}
			p := newEnv(b).pool(pool.Options{MaxInstances: 1, MemoryMB: 128,
				Policy: s.New(keepalive.Function{MemoryMB: 128})})
			op(b, p) // the cold start, outside the measurement
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				op(b, p)
			}
		})
	}
}
