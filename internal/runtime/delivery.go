package runtime

import "errors"

// Delivery: an invocation fails with its instance only if the function
// received it. One that never reached the function (the instance died or
// was dying first) is not the function's failure, and the gateway runs it
// once more on another instance. Delivered means, exactly:
//
//   - lambda: the bootstrap's GET /next took the event and its response
//     was written without error (an event put back after a failed write
//     is not delivered: no runtime client hands a truncated /next
//     response to a handler);
//   - http and python-wsgi: at least one byte of the request was written
//     to the app's connection (the kernel took it; the app may have read
//     it). A request whose body was partly streamed was delivered.

// NotDelivered is the error of an invocation its instance never received.
// The instance is unusable (Err says why); the caller may run the
// invocation on another instance.
type NotDelivered struct {
	// Err is why the instance could not take it, an *Error where possible.
	Err error
	// Body is what the runtime had already read of the request body
	// (nil: nothing): a retry must send it before the rest of the body.
	Body []byte
}

func (e *NotDelivered) Error() string { return "not delivered: " + e.Err.Error() }
func (e *NotDelivered) Unwrap() error { return e.Err }

// AsNotDelivered returns err's *NotDelivered, if it is one.
func AsNotDelivered(err error) (*NotDelivered, bool) {
	if err == nil {
		return nil, false // before nd, which escapes: every invocation asks
	}
	var nd *NotDelivered
	ok := errors.As(err, &nd)
	return nd, ok
}

// Settling is an Instance that is not free again the moment an invocation
// returns: a Lambda bootstrap takes its next event only once it asks for
// it (GET /next). The pool hands such an instance another invocation only
// after Free is closed, and never if the instance exits first (a runtime
// that reported an error and then exits, as aws-lambda-go does after a
// panic, gets nothing more).
type Settling interface {
	// Free is closed once the instance can take another invocation.
	Free() <-chan struct{}
}
