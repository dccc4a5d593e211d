// Package httpwire is the one layer between a request and an instance that
// every runtime and the Invoke API share: it refuses requests net/http's
// Transport would refuse to write (Validate), decides which header fields
// reach an instance (EachHeader, CopyResponseHeader), applies the one
// forwarded-header policy (Forwarding) and holds the one capturing
// ResponseWriter (Capture).
package httpwire
