// Package record defines the one record every invocation yields, and renders
// it as Lambda's START/END/REPORT log lines.
package record

import "time"

// Record is one invocation, as stored, logged and (later) traced and priced.
type Record struct {
	RequestID    string
	Function     string
	Version      string
	Start        time.Time
	Cold         bool
	InitMS       float64 // process start → ready; 0 when warm
	QueueMS      float64 // waiting for an instance
	DurationMS   float64 // the invocation itself
	BilledMS     int64   // DurationMS rounded up to the billing granularity
	MemoryMB     int
	MaxMemoryMB  int
	Status       int    // HTTP status sent to the client
	ErrorType    string // e.g. "Runtime.OutOfMemory", "Sandbox.Timedout"; empty on success
	InstanceID   string
	Method, Path string
}
