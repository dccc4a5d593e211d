// Package runtime defines how an instance of a function starts and how one
// invocation reaches it. Each kind (http, lambda, python-wsgi) is a
// subpackage implementing Runtime behind this one small interface.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Runtime starts instances of one function version.
type Runtime interface {
	// Start starts one instance and returns once it is ready to serve, or
	// with an *Error of type Runtime.InitError (or similar) if it never became ready.
	Start(ctx context.Context, id string) (Instance, error)
}

// Preparer is a Runtime with work to do once per function version before its
// first instance, such as starting the template instances fork from. A
// deploy fails, and the previous version keeps serving, if Prepare fails.
type Preparer interface {
	Prepare(ctx context.Context) error
}

// Closer is a Runtime that holds something besides its instances (a
// template); the pool closes it once its instances are stopped.
type Closer interface {
	Close(ctx context.Context) error
}

// Snapshotter is a Runtime whose instances start from a snapshot (the
// python-wsgi template), which is made once per version and shown apart
// from the instances' cold starts, as SnapStart shows its snapshot.
type Snapshotter interface {
	Snapshot() (Snapshot, bool)
}

// Snapshot describes the process instances are forked from.
type Snapshot struct {
	ID       string  `json:"id"`
	Pid      int     `json:"pid"`
	InitMS   float64 `json:"init_ms"` // start → imported and warmed up
	MemoryMB int     `json:"memory_mb"`
	Started  int     `json:"started"` // templates started for this version (more than 1: one died)
	// Interpreter names what runs the app: path, version, frameworks.
	Interpreter string `json:"interpreter,omitempty"`
	// Warning says why the snapshot may not be warm (a refused warm-up).
	Warning string `json:"warning,omitempty"`
}

// Instance is one started, ready instance.
type Instance interface {
	// Invoke serves one request. It returns nil once a response has been
	// written; otherwise an *Error saying why, and the caller writes the
	// error response if nothing has been written yet.
	Invoke(w http.ResponseWriter, r *http.Request) error
	// Done is closed when the instance's process has exited, for any reason.
	Done() <-chan struct{}
	// Err says why the instance exited (valid after Done), as an *Error.
	Err() error
	Pid() int
	InitDuration() time.Duration
	MaxMemoryMB() int
	MemoryMB() int
	// Stop stops the instance and frees everything it holds. Safe to call more than once.
	Stop(ctx context.Context) error
}

// Error is a failure reported the way Lambda reports it.
type Error struct {
	Type    string // e.g. "Runtime.ExitError", "Runtime.OutOfMemory", "Runtime.InitError"
	Message string
	// Status is the HTTP status to answer with (502 by default).
	Status int
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Type, e.Message) }

// Errorf builds an *Error.
func Errorf(typ string, status int, format string, args ...any) *Error {
	return &Error{Type: typ, Status: status, Message: fmt.Sprintf(format, args...)}
}

// AsError returns err as an *Error, wrapping foreign errors as Runtime.Unknown.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Type: "Runtime.Unknown", Message: err.Error(), Status: http.StatusBadGateway}
}
