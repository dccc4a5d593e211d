package record

import (
	"fmt"
	"strconv"
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
//
// Appended by hand rather than with fmt (the same text: %.2f is
// strconv's 'f' with 2 digits): it is written for every invocation.
func ReportLine(r *Record) string {
	var buf [192]byte
	b := append(buf[:0], "REPORT RequestId: "...)
	b = append(b, r.RequestID...)
	b = append(b, "\tDuration: "...)
	b = strconv.AppendFloat(b, r.DurationMS, 'f', 2, 64)
	b = append(b, " ms\tBilled Duration: "...)
	b = strconv.AppendInt(b, r.BilledMS, 10)
	b = append(b, " ms\tMemory Size: "...)
	b = strconv.AppendInt(b, int64(r.MemoryMB), 10)
	b = append(b, " MB\tMax Memory Used: "...)
	b = strconv.AppendInt(b, int64(r.MaxMemoryMB), 10)
	b = append(b, " MB\t"...)
	if r.Cold {
		b = append(b, "Init Duration: "...)
		b = strconv.AppendFloat(b, r.InitMS, 'f', 2, 64)
		b = append(b, " ms\t"...)
	}
	return string(b)
}

// ErrorLines are the lines Lambda writes between a failed invocation's
// START and END (no trailing newlines), at now:
//
//   - a timeout: "2024-01-02T03:04:05.678Z <id> Task timed out after 3.00 seconds";
//   - the runtime failed (Runtime.ExitError, Runtime.OutOfMemory, an init
//     error): "RequestId: <id> Error: <message>" then the error type;
//   - an error the function reported (its handler threw): none, since the
//     runtime logged it already, as on Lambda.
//
// Any other failure is Stoke's own (the gateway's timeout, a client that
// went away): one line marked STOKE, which Lambda never writes.
func ErrorLines(r *Record, now time.Time) []string {
	switch {
	case r.ErrorType == "":
		return nil
	case r.ErrorType == "Sandbox.Timedout":
		msg := r.ErrorMessage
		if msg == "" {
			msg = "Task timed out"
		}
		return []string{now.UTC().Format("2006-01-02T15:04:05.000Z") + " " + r.RequestID + " " + msg}
	case strings.HasPrefix(r.ErrorType, "Runtime."):
		msg := r.ErrorMessage
		if r.ErrorType == "Runtime.OutOfMemory" {
			// Lambda's line ends at how the runtime exited ("signal:
			// killed"); the explanation Stoke adds for the caller (and
			// its INSTANCE line) is not in it.
			msg, _, _ = strings.Cut(msg, OOMExplanation)
		}
		if msg == "" {
			msg = r.ErrorType
		}
		return []string{"RequestId: " + r.RequestID + " Error: " + msg, r.ErrorType}
	case strings.HasPrefix(r.ErrorType, "Gateway.") || strings.HasPrefix(r.ErrorType, "Client.") || stokeErrors[r.ErrorType]:
		line := fmt.Sprintf("STOKE RequestId: %s Error: %s (status %d)", r.RequestID, r.ErrorType, r.Status)
		if r.ErrorMessage != "" {
			line += ": " + r.ErrorMessage
		}
		return []string{line}
	}
	return nil
}

// OOMExplanation starts what runtime.ExitError adds to an out-of-memory
// kill's message ("…: signal: killed: the instance exceeded its memory
// limit of 128 MB"), which Lambda's log line does not have.
const OOMExplanation = ": the instance exceeded its memory limit of"

// stokeErrors are the error types Stoke answers with itself, which no
// function reports.
var stokeErrors = map[string]bool{"RequestTooLargeException": true, "ResourceNotFoundException": true, "TooManyRequestsException": true,
	"InvalidRequestContentException": true}
