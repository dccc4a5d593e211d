package httpwire

import (
	"fmt"
	"net/http"

	"golang.org/x/net/http/httpguts"
)

// RequestError is a request that cannot be sent to an instance as it is:
// a method, URL, Host or header field that would let one request's bytes
// be read as another's. Nothing has reached the instance when it is
// returned, so the caller answers 400 (the Invoke API:
// InvalidRequestContentException) and keeps the instance.
type RequestError struct {
	Reason string // e.g. `invalid header field value for "X-A"`
}

func (e *RequestError) Error() string { return "invalid request: " + e.Reason }

// Validate checks r as net/http's Transport checks a request before
// writing it: the method is a token, the request URI has no control
// characters, header names are tokens and values have no control
// characters but tab. Unlike the Transport, which sends an invalid Host
// as an empty one, Validate refuses it. The values themselves are not
// quoted in errors: they may be secrets.
func Validate(r *http.Request) error {
	if !httpguts.ValidHeaderFieldName(r.Method) { // a method is a token, as a field name is
		return &RequestError{fmt.Sprintf("invalid method %q", r.Method)}
	}
	if r.URL == nil {
		return &RequestError{"no URL"}
	}
	if hasCTL(r.URL.RequestURI()) {
		return &RequestError{"control character in the URL"}
	}
	if !httpguts.ValidHostHeader(r.Host) {
		return &RequestError{"invalid Host"}
	}
	for k, vv := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return &RequestError{fmt.Sprintf("invalid header field name %q", k)}
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return &RequestError{fmt.Sprintf("invalid header field value for %q", k)}
			}
		}
	}
	return nil
}

// hasCTL is net/http's stringContainsCTLByte.
func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b == 0x7f {
			return true
		}
	}
	return false
}
