// Package lambdaspec is AWS Lambda's published limits and naming rules
// (memory, /tmp, timeout, payloads; function names, qualifiers, regions,
// accounts, ARNs, environment names), written once for config, the Invoke
// API, tune, zappa and the runtimes to share.
package lambdaspec

import "time"

// Lambda's quotas, as its documentation lists them.
const (
	MinMemoryMB = 128   // a function's smallest memory size
	MaxMemoryMB = 10240 // and its largest
	// MaxTimeout is the longest a function may run per invocation.
	MaxTimeout = 900 * time.Second
	// MaxSyncPayload bounds a RequestResponse invocation's request and
	// response; the Runtime Interface Emulator enforces and names it too.
	MaxSyncPayload = 6 << 20
	// MaxAsyncPayload bounds an Event invocation's request.
	MaxAsyncPayload = 1 << 20
	// MaxFunctionName is the longest function name.
	MaxFunctionName = 64
	// MinEphemeralStorageMB and MaxEphemeralStorageMB bound a function's
	// /tmp (its ephemeral storage).
	MinEphemeralStorageMB = 512
	MaxEphemeralStorageMB = 10240
)

// Asynchronous invocation (Lambda's EventInvokeConfig): retries of a
// failed event, and how old an event may get before it is given up. Each
// maximum is also the default.
const (
	MaxRetryAttempts = 2
	MinEventAge      = 60 * time.Second
	MaxEventAge      = 6 * time.Hour
)

// Lambda's defaults for what a function leaves unset, and its init limit.
const (
	DefaultMemoryMB           = 128
	DefaultEphemeralStorageMB = 512
	DefaultTimeout            = 3 * time.Second
	// MaxInit is how long an on-demand instance's init may take.
	MaxInit = 10 * time.Second
)
