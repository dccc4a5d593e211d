package runtime

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/lambdaspec"
	"github.com/stokehq/stoke/internal/sandbox"
)

// ExitError describes how an instance's process ended, the way Lambda words
// it; prefixed with "RequestId: … Error: " when an invocation was in flight.
func ExitError(x sandbox.Exit, memoryMB int, requestID string) *Error {
	how := "exit status " + strconv.Itoa(x.Code)
	if x.Signal != "" {
		how = "signal: " + x.Signal
	}
	prefix := ""
	if requestID != "" {
		prefix = "RequestId: " + requestID + " Error: "
	}
	switch {
	case x.OOMKilled:
		return Errorf("Runtime.OutOfMemory", http.StatusBadGateway,
			"%sRuntime exited with error: %s: the instance exceeded its memory limit of %d MB", prefix, how, memoryMB)
	case x.Stopped:
		return Errorf("Runtime.ExitError", http.StatusBadGateway, "%sRuntime exited: instance was stopped", prefix)
	}
	return Errorf("Runtime.ExitError", http.StatusBadGateway, "%sRuntime exited with error: %s", prefix, how)
}

// ExitGrace is how long a runtime waits, after an instance's connection
// broke, to see its process exit (sandbox.Process.Exited): the reset
// usually arrives a moment before the exit. A process still running then
// closed its connection and lives on.
const ExitGrace = time.Second

// AwaitExit waits up to ExitGrace for p to exit and then for its exit
// status, however long the sandbox takes to learn it (on a loaded machine
// a python template may report its fork's status well after the exit; the
// sandbox bounds that wait), so the error can say how the process ended —
// an OOM kill, most often — rather than that the connection broke. False
// when p is still running after ExitGrace, or ctx ended.
func AwaitExit(ctx context.Context, p sandbox.Process) bool {
	t := time.NewTimer(ExitGrace)
	defer t.Stop()
	select {
	case <-p.Exited():
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
	select {
	case <-p.Done():
		return true
	case <-ctx.Done():
		return false
	}
}

// LastLines keeps the last few lines an instance wrote, so an init failure
// can say what the app said before it died. Its zero value is ready to use.
type LastLines struct {
	mu    sync.Mutex
	lines [lastLines]string
	n     int
}

const lastLines = 10

// Add keeps one line (cut at 512 bytes).
func (r *LastLines) Add(line string) {
	if len(line) > 512 {
		line = line[:512] + "…"
	}
	r.mu.Lock()
	r.lines[r.n%lastLines] = line
	r.n++
	r.mu.Unlock()
}

// String joins the kept lines, oldest first, with " | ".
func (r *LastLines) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for i := max(0, r.n-lastLines); i < r.n; i++ {
		if b.Len() > 0 {
			b.WriteString(" | ")
		}
		b.WriteString(r.lines[i%lastLines])
	}
	return b.String()
}

// InitTimeout is how long an instance of f may take to become ready, from
// asking the sandbox for its process: init_timeout, or Lambda's 10 s.
func InitTimeout(f *config.Function) time.Duration {
	if f.InitTimeout > 0 {
		return f.InitTimeout
	}
	return lambdaspec.MaxInit
}
