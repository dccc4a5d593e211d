// Package trace makes every invocation a trace: spans gateway (the root:
// request in, response out), queue (waiting for an instance), init (cold
// starts only: process start to ready, overlapping queue) and invoke (the
// app's work).
//
// The request path only makes the ids (a Context), so the function can be
// handed the trace context before it runs, and stamps them on the
// invocation's record. The spans are built from the record afterwards, with
// explicit timestamps: in SQLite only the record is kept (a trace lives as
// long as its record), and its spans are rebuilt when read (FromRecord);
// when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
// set, the Tracer's goroutine builds them and exports them over OTLP/HTTP.
package trace

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	oteltrace "go.opentelemetry.io/otel/trace"
)

// Context is one invocation's trace identity, made before the function runs.
type Context struct {
	TraceID oteltrace.TraceID
	// Parent is the caller's span (from traceparent or X-Amzn-Trace-Id);
	// zero when the trace starts here.
	Parent oteltrace.SpanID
	// Gateway and Invoke are the ids of those spans: the function is told
	// Invoke as its parent, so its own spans nest under it.
	Gateway, Invoke oteltrace.SpanID
	Sampled         bool
}

// NewContext starts a trace. Its id is also a valid X-Ray id: the first 4 bytes are
// the Unix time, as X-Ray requires of a root and AWS's OpenTelemetry id
// generator does.
func NewContext() Context {
	var c Context
	binary.BigEndian.PutUint32(c.TraceID[:4], uint32(time.Now().Unix()))
	binary.NativeEndian.PutUint32(c.TraceID[4:8], rand.Uint32())
	binary.NativeEndian.PutUint64(c.TraceID[8:], rand.Uint64())
	c.Sampled = true
	c.spanIDs()
	return c
}

// spanIDs makes the gateway and invoke span ids. math/rand/v2's global
// generator is per-thread ChaCha8: no lock, no syscall; trace ids need to be
// unique, not secret.
func (c *Context) spanIDs() {
	c.Gateway = newSpanID()
	c.Invoke = newSpanID()
}

func newSpanID() oteltrace.SpanID {
	var s oteltrace.SpanID
	for !s.IsValid() {
		binary.NativeEndian.PutUint64(s[:], rand.Uint64())
	}
	return s
}

// Valid says whether c has a trace id (the zero Context does not).
func (c Context) Valid() bool { return c.TraceID.IsValid() }

// FromHeaders continues the caller's trace, from a W3C traceparent or else
// an X-Amzn-Trace-Id, or starts a new one when neither is usable.
func FromHeaders(h http.Header) Context {
	// Indexed, not Get: net/http canonicalized the keys already, and this
	// runs on every request.
	if v := h["Traceparent"]; len(v) > 0 {
		if c, ok := ParseTraceparent(v[0]); ok {
			return c
		}
	}
	if v := h["X-Amzn-Trace-Id"]; len(v) > 0 {
		if c, ok := ParseXRay(v[0]); ok {
			return c
		}
	}
	return NewContext()
}

// Inject tells the function the trace context: traceparent (W3C, for http
// apps and OpenTelemetry SDKs) and X-Amzn-Trace-Id (X-Ray form, which the
// lambda runtime passes on as Lambda-Runtime-Trace-Id), both naming the
// invoke span as the parent. Whatever the caller sent is replaced.
func (c Context) Inject(h http.Header) {
	// One string and one slice for both fields: this runs per request.
	var b [55 + 74]byte
	c.traceparent(b[:55])
	c.xray(b[55:])
	s := string(b[:])
	v := []string{s[:55], s[55:]}
	h["Traceparent"] = v[0:1:1]
	h["X-Amzn-Trace-Id"] = v[1:2:2]
}

// Traceparent is the W3C header the function gets: version 00, the trace
// id, the invoke span as parent, and the sampled flag.
func (c Context) Traceparent() string {
	var b [55]byte
	c.traceparent(b[:])
	return string(b[:])
}

// traceparent writes Traceparent into b (55 bytes).
func (c Context) traceparent(b []byte) {
	copy(b[:], "00-")
	hex.Encode(b[3:35], c.TraceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], c.Invoke[:])
	copy(b[52:], "-00")
	if c.Sampled {
		b[54] = '1'
	}
}

// XRay is the X-Amzn-Trace-Id (and Lambda-Runtime-Trace-Id) the function
// gets: an X-Ray root is "1-" + the first 8 hex digits of the W3C trace id +
// "-" + the other 24, so both name the same trace.
func (c Context) XRay() string {
	var b [74]byte
	c.xray(b[:])
	return string(b[:])
}

// xray writes XRay into b (74 bytes).
func (c Context) xray(b []byte) {
	copy(b[:], "Root=1-")
	var id [32]byte
	hex.Encode(id[:], c.TraceID[:])
	copy(b[7:15], id[:8])
	b[15] = '-'
	copy(b[16:40], id[8:])
	copy(b[40:], ";Parent=")
	hex.Encode(b[48:64], c.Invoke[:])
	copy(b[64:], ";Sampled=0")
	if c.Sampled {
		b[73] = '1'
	}
}

// ParseTraceparent continues a W3C traceparent
// (version-traceid-parentid-flags). Versions above 00 are read by their
// first four fields, as the spec asks; version ff and all-zero ids are invalid.
func ParseTraceparent(s string) (Context, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 55 || (len(s) > 55 && (s[:2] == "00" || s[55] != '-')) || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return Context{}, false
	}
	var ver, flags [1]byte
	var c Context
	if !decodeLower(ver[:], s[:2]) || ver[0] == 0xff ||
		!decodeLower(c.TraceID[:], s[3:35]) || !decodeLower(c.Parent[:], s[36:52]) || !decodeLower(flags[:], s[53:55]) ||
		!c.TraceID.IsValid() || !c.Parent.IsValid() {
		return Context{}, false
	}
	c.Sampled = flags[0]&1 == 1
	c.spanIDs()
	return c, true
}

// ParseXRay continues an X-Amzn-Trace-Id such as
// "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".
// A missing Sampled (or "?", "let the receiver decide") counts as sampled.
func ParseXRay(s string) (Context, bool) {
	var c Context
	c.Sampled = true
	root := false
	for field := range strings.SplitSeq(s, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(field), "=")
		switch k {
		case "Root":
			if len(v) != 35 || v[:2] != "1-" || v[10] != '-' ||
				!decodeHex(c.TraceID[:4], v[2:10]) || !decodeHex(c.TraceID[4:], v[11:]) {
				return Context{}, false
			}
			root = c.TraceID.IsValid()
		case "Parent":
			if len(v) != 16 || !decodeHex(c.Parent[:], v) {
				c.Parent = oteltrace.SpanID{}
			}
		case "Sampled":
			c.Sampled = v != "0"
		}
	}
	if !root {
		return Context{}, false
	}
	c.spanIDs()
	return c, true
}

// decodeLower decodes hex that W3C requires to be lowercase.
func decodeLower(dst []byte, s string) bool { return decodeHexCase(dst, s, true) }

func decodeHex(dst []byte, s string) bool { return decodeHexCase(dst, s, false) }

// decodeHexCase decodes s, exactly 2*len(dst) hex digits, without the copy
// hex.Decode would need of a string.
func decodeHexCase(dst []byte, s string, lowerOnly bool) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := unhex(s[2*i], lowerOnly)
		lo, ok2 := unhex(s[2*i+1], lowerOnly)
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func unhex(c byte, lowerOnly bool) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case !lowerOnly && 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
