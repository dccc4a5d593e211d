package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// The gateway listener through its connection loop (internal/frontconn):
// a routed function's requests on one kept-alive connection; an unrouted
// path (404) and a chunked body, which the loop hands to net/http, with
// the connection going on there; requests sent together answered in
// order.
func TestGatewayConnectionLoop(t *testing.T) {
	s := start(t)
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", s.GatewayAddr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		return c, bufio.NewReader(c)
	}
	expect := func(br *bufio.Reader, method string, status int, body string) {
		t.Helper()
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != status || (body != "" && string(b) != body) || res.Header.Get("X-Request-Id") == "" {
			t.Fatalf("%d %q %v; want %d %q", res.StatusCode, b, err, status, body)
		}
	}
	c, br := dial()
	for i := range 50 {
		fmt.Fprintf(c, "GET /f/%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		expect(br, "GET", 200, fmt.Sprintf("hello /f/%d", i))
	}
	fmt.Fprintf(c, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
	expect(br, "GET", 404, "")
	fmt.Fprintf(c, "GET /f/after HTTP/1.1\r\nHost: x\r\n\r\n")
	expect(br, "GET", 200, "hello /f/after")

	c2, br2 := dial()
	fmt.Fprintf(c2, "GET /f/1 HTTP/1.1\r\nHost: x\r\n\r\n"+
		"POST /f/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"+
		"POST /f/3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"+
		"HEAD /f/4 HTTP/1.1\r\nHost: x\r\n\r\n"+
		"GET /f/5 HTTP/1.1\r\nHost: x\r\n\r\n")
	expect(br2, "GET", 200, "hello /f/1")
	expect(br2, "POST", 200, "hello /f/2")
	expect(br2, "POST", 200, "hello /f/3")
	expect(br2, "HEAD", 200, "")
	expect(br2, "GET", 200, "hello /f/5")
}
