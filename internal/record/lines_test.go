package record

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The lines below are AWS's own examples from reference/lambda.md.
const (
	awsStart  = "START RequestId: 8476a536-e9f4-11e8-9739-2dfe598c3fcd Version: $LATEST"
	awsEnd    = "END RequestId: 8476a536-e9f4-11e8-9739-2dfe598c3fcd"
	awsReport = "REPORT RequestId: 8476a536-e9f4-11e8-9739-2dfe598c3fcd\tDuration: 47.28 ms\tBilled Duration: 48 ms\tMemory Size: 128 MB\tMax Memory Used: 86 MB\tInit Duration: 340.74 ms\t"
)

func awsRecord() *Record {
	return &Record{
		RequestID:   "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
		Cold:        true,
		InitMS:      340.74,
		DurationMS:  47.28,
		BilledMS:    Billed(47280*time.Microsecond, time.Millisecond),
		MemoryMB:    128,
		MaxMemoryMB: 86,
	}
}

func TestLinesMatchAWS(t *testing.T) {
	r := awsRecord()
	if got := StartLine(r); got != awsStart {
		t.Errorf("StartLine:\n got %q\nwant %q", got, awsStart)
	}
	if got := EndLine(r); got != awsEnd {
		t.Errorf("EndLine:\n got %q\nwant %q", got, awsEnd)
	}
	if got := ReportLine(r); got != awsReport {
		t.Errorf("ReportLine:\n got %q\nwant %q", got, awsReport)
	}

	r.Version = "7"
	if got, want := StartLine(r), "START RequestId: 8476a536-e9f4-11e8-9739-2dfe598c3fcd Version: 7"; got != want {
		t.Errorf("StartLine with version: got %q want %q", got, want)
	}

	r.Cold = false
	warm := "REPORT RequestId: 8476a536-e9f4-11e8-9739-2dfe598c3fcd\tDuration: 47.28 ms\tBilled Duration: 48 ms\tMemory Size: 128 MB\tMax Memory Used: 86 MB\t"
	if got := ReportLine(r); got != warm {
		t.Errorf("warm ReportLine:\n got %q\nwant %q", got, warm)
	}
}

// Power Tuning's regexes, verbatim.
var (
	reDuration = regexp.MustCompile(`\tDuration: (\d+\.\d+) ms`)
	reBilled   = regexp.MustCompile(`\tBilled Duration: (\d+) ms`)
	reInit     = regexp.MustCompile(`\tInit Duration: (\d+\.\d+) ms`)
)

func TestReportParsesWithPowerTuningRegexes(t *testing.T) {
	r := &Record{RequestID: "x", Cold: true, InitMS: 1234.5, DurationMS: 3, BilledMS: 100, MemoryMB: 1024, MaxMemoryMB: 90}
	line := ReportLine(r)

	m := reDuration.FindStringSubmatch(line)
	if m == nil || m[1] != "3.00" {
		t.Fatalf("Duration regex on %q: %v", line, m)
	}
	if m := reBilled.FindStringSubmatch(line); m == nil || m[1] != "100" {
		t.Fatalf("Billed regex on %q: %v", line, m)
	}
	if m := reInit.FindStringSubmatch(line); m == nil || m[1] != "1234.50" {
		t.Fatalf("Init regex on %q: %v", line, m)
	}
	// The Duration regex must not be fooled by "Billed Duration" or "Init Duration".
	if n := len(reDuration.FindAllStringIndex(line, -1)); n != 1 {
		t.Fatalf("Duration regex matched %d times in %q", n, line)
	}

	r.Cold = false
	if m := reInit.FindStringSubmatch(ReportLine(r)); m != nil {
		t.Fatalf("warm REPORT has Init Duration: %q", ReportLine(r))
	}
	d, err := strconv.ParseFloat(reDuration.FindStringSubmatch(ReportLine(r))[1], 64)
	if err != nil || d != 3 {
		t.Fatalf("warm Duration = %v, %v", d, err)
	}
}

func TestBilled(t *testing.T) {
	ms := time.Millisecond
	us := time.Microsecond
	for _, c := range []struct {
		d, g time.Duration
		want int64
	}{
		{47280 * us, ms, 48},
		{170 * ms, 100 * ms, 200},
		{71 * ms, 100 * ms, 100},
		{100 * ms, 100 * ms, 100},
		{100*ms + 1, 100 * ms, 200},
		{48 * ms, ms, 48},
		{0, ms, 1},
		{0, 100 * ms, 100},
		{100 * us, ms, 1},
		{1, ms, 1},
		{2 * time.Second, ms, 2000},
		{47280 * us, 0, 48},       // default granularity
		{47280 * us, -5 * ms, 48}, // nonsense granularity → default
		{1, 1500 * us, 2},         // sub-ms granularity still bills whole ms
	} {
		if got := Billed(c.d, c.g); got != c.want {
			t.Errorf("Billed(%v, %v) = %d, want %d", c.d, c.g, got, c.want)
		}
	}
}

func TestErrorLines(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 678e6, time.UTC)
	for _, tc := range []struct {
		typ, msg string
		status   int
		want     []string
	}{
		{"", "", 200, nil},
		{"Sandbox.Timedout", "Task timed out after 3.00 seconds", 504, []string{"2024-01-02T03:04:05.678Z rid Task timed out after 3.00 seconds"}},
		{"Runtime.ExitError", "Runtime exited with error: exit status 3", 502, []string{"RequestId: rid Error: Runtime exited with error: exit status 3", "Runtime.ExitError"}},
		// Lambda's OOM line is how the runtime exited, without Stoke's explanation.
		{"Runtime.OutOfMemory", "Runtime exited with error: signal: killed: the instance exceeded its memory limit of 128 MB", 502,
			[]string{"RequestId: rid Error: Runtime exited with error: signal: killed", "Runtime.OutOfMemory"}},
		// The function reported it (its runtime logged it): nothing more.
		{"Error", "", 502, nil},
		{"errorString", "", 502, nil},
		{"Gateway.Timeout", "", 504, []string{"STOKE RequestId: rid Error: Gateway.Timeout (status 504)"}},
	} {
		got := ErrorLines(&Record{RequestID: "rid", ErrorType: tc.typ, ErrorMessage: tc.msg, Status: tc.status}, at)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s: %q, want %q", tc.typ, got, tc.want)
		}
	}
}

// ReportLine is appended by hand: it must say what fmt's format did, for
// any numbers.
func TestReportLineMatchesFormat(t *testing.T) {
	for _, d := range []float64{0, 0.004, 0.005, 1.005, 2.675, 99.999, 123456.789, 1e21, math.Inf(1), math.NaN()} {
		for _, cold := range []bool{false, true} {
			r := &Record{RequestID: "id-1", DurationMS: d, BilledMS: 1 << 40, MemoryMB: 1769, MaxMemoryMB: 0, Cold: cold, InitMS: d * 3}
			want := fmt.Sprintf("REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB\t",
				r.RequestID, r.DurationMS, r.BilledMS, r.MemoryMB, r.MaxMemoryMB)
			if cold {
				want += fmt.Sprintf("Init Duration: %.2f ms\t", r.InitMS)
			}
			if got := ReportLine(r); got != want {
				t.Errorf("ReportLine:\n got %q\nwant %q", got, want)
			}
		}
	}
}
