package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/lambdaspec"
	"github.com/stokehq/stoke/internal/runtime/httpwire"
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

// ParentGone is the error of an instance that ended because the process
// it shares its fate with did (a python fork, with isolation, ends with its
// template): one failure of that process, however many instances it took
// with it, not a failed start of each (the pool counts it once).
type ParentGone struct {
	Parent string // names the process that ended (a template's id)
	Err    *Error
}

func (e *ParentGone) Error() string { return e.Err.Error() }
func (e *ParentGone) Unwrap() error { return e.Err }

// AsParentGone returns err's *ParentGone, if it is one.
func AsParentGone(err error) (*ParentGone, bool) {
	var pg *ParentGone
	ok := errors.As(err, &pg)
	return pg, ok
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

// Proc is the process side of an Instance, the same for every kind that
// embeds it: the sandboxed process and how its lines, its exit and its
// sizes are reported. Embedded, it gives the Instance Done, Err, Pid,
// InitDuration, MaxMemoryMB and MemoryMB.
type Proc struct {
	ID            string // the instance's id, which its output lines carry
	MemoryLimitMB int    // the function's memory, named in an OOM error
	// Output receives the process's lines (may be nil).
	Output  func(instanceID, stream, line string)
	Process sandbox.Process // set once started
	Init    time.Duration   // how long it took to become ready
	Last    LastLines       // the last lines, for an init error
	// ParentGone, when set, says whether the process ended because the
	// process it shares its fate with did (a python fork of an isolated
	// template); its *ParentGone then replaces ExitError in EndError.
	ParentGone func(sandbox.Exit) *ParentGone
}

// Line is the sandbox's Output for the process: it keeps the line and
// passes it on.
func (p *Proc) Line(stream, line string) {
	p.Last.Add(line)
	if p.Output != nil {
		p.Output(p.ID, stream, line)
	}
}

// ExitError describes how the process ended, the way Lambda words it.
func (p *Proc) ExitError() *Error {
	return ExitError(p.Process.Exit(), p.MemoryLimitMB, "")
}

// EndError says why the process exited: ExitError, or a *ParentGone
// when it ended with its parent.
func (p *Proc) EndError() error {
	x := p.Process.Exit()
	if p.ParentGone != nil {
		if pg := p.ParentGone(x); pg != nil {
			return pg
		}
	}
	return ExitError(x, p.MemoryLimitMB, "")
}

func (p *Proc) Done() <-chan struct{} { return p.Process.Done() }

// Err says why the process exited; nil while it runs.
func (p *Proc) Err() error {
	select {
	case <-p.Process.Done():
		return p.EndError()
	default:
		return nil
	}
}

func (p *Proc) Pid() int                    { return p.Process.Pid() }
func (p *Proc) InitDuration() time.Duration { return p.Init }
func (p *Proc) MaxMemoryMB() int            { return p.Process.MaxMemoryMB() }
func (p *Proc) MemoryMB() int               { return p.Process.MemoryMB() }

// Refuse says why r cannot go to the process at all, the checks every
// Invoke makes first: the request ended (ctx's error, wrapped), r is not
// what net/http would write (httpwire.Validate's error, wrapped: a 400),
// or the process exited (a *NotDelivered). nil: send it.
func (p *Proc) Refuse(r *http.Request) error {
	if err := r.Context().Err(); err != nil {
		return fmt.Errorf("invoke instance %s: %w", p.ID, err)
	}
	if err := httpwire.Validate(r); err != nil {
		return fmt.Errorf("invoke instance %s: %w", p.ID, err)
	}
	select {
	case <-p.Process.Done():
		return &NotDelivered{Err: p.EndError()}
	default:
		return nil
	}
}
