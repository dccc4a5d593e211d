package record

import (
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/sandbox"
)

// The message runtime.ExitError gives an out-of-memory kill is logged as
// Lambda logs it: OOMExplanation must still be how that message goes on.
func TestOOMLineFromTheRuntimesMessage(t *testing.T) {
	e := runtime.ExitError(sandbox.Exit{Code: -1, Signal: "killed", OOMKilled: true}, 128, "")
	got := ErrorLines(&Record{RequestID: "rid", ErrorType: e.Type, ErrorMessage: e.Message, Status: e.Status}, time.Now())
	want := []string{"RequestId: rid Error: Runtime exited with error: signal: killed", "Runtime.OutOfMemory"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("from %q: %q, want %q", e.Message, got, want)
	}
}
