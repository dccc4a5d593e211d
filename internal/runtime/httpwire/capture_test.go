package httpwire

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestCaptureKeeps(t *testing.T) {
	c := &Capture{Limit: 5}
	c.Header().Set("X-A", "1")
	c.WriteHeader(http.StatusContinue) // informational: not the status
	c.WriteHeader(http.StatusTeapot)
	c.WriteHeader(http.StatusOK) // a second WriteHeader changes nothing
	if n, err := c.Write([]byte("abc")); n != 3 || err != nil {
		t.Fatal(n, err)
	}
	if n, err := c.Write([]byte("defg")); n != 4 || err != nil {
		t.Fatal(n, err)
	}
	if c.Status != http.StatusTeapot || c.Body.String() != "abcde" || !c.Truncated || c.Header().Get("X-A") != "1" {
		t.Errorf("status %d, body %q, truncated %v", c.Status, c.Body.String(), c.Truncated)
	}
	if err := http.NewResponseController(c).Flush(); err != nil {
		t.Errorf("flush of a kept response: %v", err)
	}
	if err := http.NewResponseController(c).EnableFullDuplex(); err == nil {
		t.Error("a kept response claims full duplex")
	}
}

func TestCapturePassesOn(t *testing.T) {
	rec := httptest.NewRecorder()
	c := &Capture{W: rec}
	c.Header().Set("X-A", "1")
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := http.NewResponseController(c).Flush(); err != nil || !rec.Flushed {
		t.Errorf("flush: %v, flushed %v", err, rec.Flushed)
	}
	if c.Status != http.StatusOK || rec.Code != http.StatusOK || rec.Body.String() != "hi" || rec.Header().Get("X-A") != "1" || c.Body.Len() != 0 {
		t.Errorf("capture %d %q; recorder %d %q", c.Status, c.Body.String(), rec.Code, rec.Body.String())
	}
}
