package simulate

import (
	"testing"
)

// BenchmarkDay1000 is the speed target: 1,000 functions × one day, the three
// policies (fixed:10m, hybrid, adaptive), on a generated trace.
func BenchmarkDay1000(b *testing.B) {
	tr := Generate(1000, 1, DefaultInit)
	pols, err := ParsePolicies(DefaultPolicies)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep := Run(tr, Options{Policies: pols})
		b.ReportMetric(float64(rep.Invocations), "invocations")
	}
}
