package record

import (
	"fmt"
	"strings"
	"time"
)

// Billed returns the billed milliseconds for an invocation that ran d:
// d rounded up to the billing granularity, and never less than one
// granularity, because Lambda bills a 0.1 ms invocation as a whole unit.
// A granularity ≤ 0 means 1 ms, Lambda's since December 2020; 100 ms gives
// the pre-2021 bill.
func Billed(d, granularity time.Duration) int64 {
	if granularity <= 0 {
		granularity = time.Millisecond
	}
	units := int64(d / granularity)
	if d%granularity != 0 || units == 0 {
		units++
	}
	billed := time.Duration(units) * granularity
	// A granularity that is not a whole number of ms still bills whole ms.
	ms := int64(billed / time.Millisecond)
	if billed%time.Millisecond != 0 {
		ms++
	}
	return ms
}

// version is what Lambda prints for an unpublished function.
func version(r *Record) string {
	if r.Version == "" {
		return "$LATEST"
	}
	return r.Version
}

// StartLine renders Lambda's START line (no trailing newline).
func StartLine(r *Record) string {
	return "START RequestId: " + r.RequestID + " Version: " + version(r)
}

// EndLine renders Lambda's END line (no trailing newline).
func EndLine(r *Record) string {
	return "END RequestId: " + r.RequestID
}

// ReportLine renders Lambda's REPORT line byte for byte, including the
// trailing tab, because tools such as AWS Lambda Power Tuning parse it with
// tab-anchored regexes.
func ReportLine(r *Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB\t",
		r.RequestID, r.DurationMS, r.BilledMS, r.MemoryMB, r.MaxMemoryMB)
	if r.Cold {
		fmt.Fprintf(&b, "Init Duration: %.2f ms\t", r.InitMS)
	}
	return b.String()
}
