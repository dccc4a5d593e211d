package httpwire

import (
	"bytes"
	"net/http"
)

// Capture is the one ResponseWriter that watches what an instance
// answers. With W set it passes the response on and records the status
// (the gateway); with W nil it keeps the headers and the first Limit bytes
// of the body (the Invoke API's http functions, stoke tune).
type Capture struct {
	W     http.ResponseWriter
	Limit int // bytes of body kept when W is nil
	// Status is the final status answered, 0 until one is: WriteHeader
	// with a code of 200 or more, or the first Write (200).
	Status int
	// Body holds up to Limit bytes of the body when W is nil; Truncated
	// says more was written.
	Body      bytes.Buffer
	Truncated bool
	h         http.Header
}

func (c *Capture) Header() http.Header {
	if c.W != nil {
		return c.W.Header()
	}
	if c.h == nil {
		c.h = http.Header{}
	}
	return c.h
}

func (c *Capture) WriteHeader(code int) {
	if c.Status == 0 && code >= 200 {
		c.Status = code
	}
	if c.W != nil {
		c.W.WriteHeader(code)
	}
}

func (c *Capture) Write(b []byte) (int, error) {
	if c.Status == 0 {
		c.Status = http.StatusOK
	}
	if c.W != nil {
		return c.W.Write(b)
	}
	room := max(c.Limit-c.Body.Len(), 0)
	if len(b) > room {
		c.Truncated = true
	}
	c.Body.Write(b[:min(len(b), room)])
	return len(b), nil
}

// FlushError flushes W; a kept response has nothing to flush.
func (c *Capture) FlushError() error {
	if c.W == nil {
		return nil
	}
	return http.NewResponseController(c.W).Flush()
}

// Unwrap lets http.ResponseController reach W (nil when the response is
// kept: the controller then reports what it cannot do).
func (c *Capture) Unwrap() http.ResponseWriter { return c.W }
