package runtime

import (
	"context"
	"time"
)

// Invocation is one Lambda event for an EventInstance.
type Invocation struct {
	RequestID       string
	Payload         []byte
	Deadline        time.Time
	FunctionARN     string
	TraceID         string // Lambda-Runtime-Trace-Id (X-Amzn-Trace-Id form)
	ClientContext   string // base64 JSON, as the Invoke API's X-Amz-Client-Context
	CognitoIdentity string
}

// Result is what a function answered to an Invocation.
type Result struct {
	// Payload is the function's response, or its error document
	// ({"errorMessage","errorType","stackTrace"}) when FunctionError is set.
	Payload []byte
	// FunctionError is "" on success, else "Unhandled" (Lambda's
	// X-Amz-Function-Error value).
	FunctionError string
	// ErrorType is the error's type when FunctionError is set, e.g.
	// "errorString", "Runtime.ExitError".
	ErrorType string
}

// EventInstance is an instance that takes Lambda events directly: the
// lambda runtime's instances. The Invoke API uses it when an instance
// implements it, and converts to and from HTTP otherwise.
type EventInstance interface {
	Instance
	// InvokeEvent runs one event. A function error (the handler returned an
	// error or panicked) is a Result with FunctionError set and a nil error;
	// an error return means the invocation could not complete (timeout via
	// ctx, process exit, out of memory) and is an *Error where possible —
	// the caller then replaces the instance.
	InvokeEvent(ctx context.Context, inv *Invocation) (*Result, error)
}
