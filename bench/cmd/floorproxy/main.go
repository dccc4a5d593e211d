// Command floorproxy is a floor under any proxy on the warm path: the least
// work something between the client and the app can do. `stokebench -floors
// warm` runs both modes beside the tuned proxy and Stoke, in front of the
// same app, to show which of issue 14's warm targets anything on the request
// path could reach.
//
//	floorproxy -mode tcp  -listen 127.0.0.1:9000 -target 127.0.0.1:9001
//	floorproxy -mode http -listen 127.0.0.1:9000 -target 127.0.0.1:9001
//	floorproxy -mode pool -listen 127.0.0.1:9000 -target 127.0.0.1:9001,127.0.0.1:9002,…
//
// tcp: a raw relay. Each client connection gets one connection to the app,
// dialled once, and io.Copy both ways (splice(2) between two TCP sockets on
// Linux). No HTTP at all: the least CPU a user-space relay can spend.
//
// http: a minimal HTTP/1.1 forwarder. Each client connection gets one
// connection to the app, dialled once. Each request's head (request line and
// headers) is read into a fixed 8 KiB buffer and its Content-Length found,
// and the request relayed unchanged; then the response's head the same way,
// and the response relayed with its body. It knows where every message ends,
// as a proxy that picks an instance per request must, and does nothing else:
// no header rewriting, no connection pool, no validation, no timeouts, and no
// chunked bodies (a chunked message ends its connection). A benchmark floor,
// not a proxy to use.
//
// pool: the http forwarder in front of N copies of the app, each taking one
// request at a time: Lambda's one-request-per-instance model with nothing
// but the forwarding. It dials one connection to each app at its start and
// keeps them on a free list (a buffered channel: checkout receives, return
// sends, and a return hands the connection straight to the longest waiting
// request). Each request's head is read from its client first, then an app
// connection checked out, the exchange relayed as in http, and the
// connection returned. No instance bookkeeping, no timeouts, no records; an
// exchange that fails closes its app connection and dials that app again.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"syscall"
)

func main() {
	mode := flag.String("mode", "tcp", "tcp (raw relay) or http (minimal HTTP/1.1 forwarder)")
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	target := flag.String("target", "", "the app's host:port, e.g. 127.0.0.1:9001 (pool: the apps', comma-separated)")
	flag.Parse()
	serve := map[string]func(net.Conn, net.Conn){"tcp": relayTCP, "http": forwardHTTP}[*mode]
	if (serve == nil && *mode != "pool") || *target == "" {
		log.Fatalf("floorproxy: need -mode tcp|http|pool (got %q) and -target host:port (got %q)", *mode, *target)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	if *mode == "pool" {
		free, err := dialApps(strings.Split(*target, ","))
		if err != nil {
			log.Fatal(err)
		}
		for {
			c, err := l.Accept()
			if err != nil {
				log.Fatal(err)
			}
			go forwardPool(c, free)
		}
	}
	for {
		c, err := l.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", *target)
			if err != nil {
				log.Printf("floorproxy: %v", err)
				return
			}
			defer u.Close()
			serve(c, u)
		}()
	}
}

// relayTCP copies bytes both ways until each side has closed its half.
func relayTCP(c, u net.Conn) {
	done := make(chan struct{})
	go func() {
		io.Copy(u, c) // *net.TCPConn to *net.TCPConn: splice(2)
		u.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(c, u)
	c.(*net.TCPConn).CloseWrite()
	<-done
}

// forwardHTTP relays requests from c to u and their responses back, one at
// a time, until either side closes or sends what it cannot frame.
func forwardHTTP(c, u net.Conn) {
	req, resp := &conn{c: c}, &conn{c: u}
	for {
		n, cl, isHEAD, ok := req.request()
		if !ok || exchange(req, resp, n, cl, isHEAD) != nil {
			return
		}
	}
}

// app is one app's kept connection in pool mode.
type app struct {
	addr string
	k    *conn
}

// dialApps dials one connection to each app and returns the free list.
func dialApps(addrs []string) (chan *app, error) {
	free := make(chan *app, len(addrs))
	for _, a := range addrs {
		u, err := net.Dial("tcp", a)
		if err != nil {
			return nil, err
		}
		free <- &app{addr: a, k: &conn{c: u}}
	}
	return free, nil
}

// forwardPool relays requests from c, each to whichever app connection is
// free, until c closes or sends what it cannot frame.
func forwardPool(c net.Conn, free chan *app) {
	defer c.Close()
	req := &conn{c: c}
	for {
		n, cl, isHEAD, ok := req.request()
		if !ok {
			return
		}
		a := <-free
		err := exchange(req, a.k, n, cl, isHEAD)
		if err != nil {
			// The app connection may be mid-message: dial it afresh.
			a.k.c.Close()
			u, derr := net.Dial("tcp", a.addr)
			if derr != nil {
				log.Fatalf("floorproxy: %v", derr)
			}
			a.k = &conn{c: u}
		}
		free <- a
		if err != nil {
			return
		}
	}
}

// request reads the next request head from k: its length, Content-Length
// (-1 if none) and whether it is a HEAD; ok false when the connection ends
// or the head cannot be framed.
func (k *conn) request() (n int, cl int64, isHEAD, ok bool) {
	n, err := k.head()
	if err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) { // wrk resets at its end
			log.Printf("floorproxy: request: %v", err)
		}
		return 0, 0, false, false
	}
	h := k.buf[k.r : k.r+n]
	if cl, err = framing(h); err != nil {
		log.Printf("floorproxy: request: %v", err)
		return 0, 0, false, false
	}
	return n, cl, bytes.HasPrefix(h, []byte("HEAD ")), true
}

// errEnded: the exchange ended its connections (a body that runs to the
// app's close).
var errEnded = errors.New("connection ended")

// exchange relays the request whose head req has read (n bytes, body cl)
// to resp's socket and the responses back to req's, up to the final one.
func exchange(req, resp *conn, n int, cl int64, isHEAD bool) error {
	c, u := req.c, resp.c
	if err := req.relay(u, int64(n)+max(cl, 0)); err != nil {
		return err
	}
	for final := false; !final; {
		n, err := resp.head()
		if err != nil {
			log.Printf("floorproxy: response: %v", err)
			return err
		}
		h := resp.buf[resp.r : resp.r+n]
		code := int64(-1)
		if len(h) >= 12 {
			code = digits(h[9:12]) // "HTTP/1.1 200 …"
		}
		cl, err := framing(h)
		if err != nil {
			log.Printf("floorproxy: response: %v", err)
			return err
		}
		final = code >= 200
		if isHEAD || !final || code == 204 || code == 304 {
			cl = 0 // no body
		}
		if cl < 0 { // the body runs to the app's close
			resp.relay(c, int64(n))
			io.Copy(c, u)
			return errEnded
		}
		if err := resp.relay(c, int64(n)+cl); err != nil {
			return err
		}
	}
	return nil
}

// conn is one side's socket and its fixed read buffer.
type conn struct {
	c    net.Conn
	buf  [8 << 10]byte
	r, w int // buf[r:w] is read and not yet relayed
}

var crlf, crlf2 = []byte("\r\n"), []byte("\r\n\r\n")

// head reads until buf[r:] starts with a whole message head and returns
// its length.
func (k *conn) head() (int, error) {
	for {
		if i := bytes.Index(k.buf[k.r:k.w], crlf2); i >= 0 {
			return i + 4, nil
		}
		if k.r > 0 {
			k.w = copy(k.buf[:], k.buf[k.r:k.w])
			k.r = 0
		}
		if k.w == len(k.buf) {
			return 0, fmt.Errorf("head larger than %d bytes", len(k.buf))
		}
		n, err := k.c.Read(k.buf[k.w:])
		k.w += n
		if n == 0 && err != nil {
			if k.w > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
}

// relay writes the next n bytes read from k to dst: those buffered, then
// the rest straight from the socket.
func (k *conn) relay(dst net.Conn, n int64) error {
	m := min(int64(k.w-k.r), n)
	if _, err := dst.Write(k.buf[k.r : k.r+int(m)]); err != nil {
		return err
	}
	if k.r += int(m); k.r == k.w {
		k.r, k.w = 0, 0
	}
	if n > m {
		_, err := io.CopyN(dst, k.c, n-m) // splice(2) again
		return err
	}
	return nil
}

// framing returns a head's Content-Length, -1 if it has none; chunked
// bodies are not supported. It does not allocate.
func framing(h []byte) (int64, error) {
	cl := int64(-1)
	_, rest, _ := bytes.Cut(h, crlf) // the request or status line
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, crlf)
		name, v, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			continue
		}
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if cl = digits(bytes.TrimSpace(v)); cl < 0 {
				return 0, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, errors.New("chunked bodies are not supported")
		}
	}
	return cl, nil
}

// digits parses a decimal number of up to 18 digits; -1 if b is not one.
func digits(b []byte) int64 {
	if len(b) == 0 || len(b) > 18 {
		return -1
	}
	n := int64(0)
	for _, d := range b {
		if d < '0' || d > '9' {
			return -1
		}
		n = n*10 + int64(d-'0')
	}
	return n
}
