package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stokehq/stoke/internal/sockdiag"
	"golang.org/x/sys/unix"
)

// gatedListener holds Serve's accept loop until open is closed, so
// connections pile up in the kernel's accept queue as under load.
type gatedListener struct {
	net.Listener
	open   chan struct{}
	once   sync.Once
	closed chan struct{}
}

func (g *gatedListener) Accept() (net.Conn, error) {
	<-g.open
	return g.Listener.Accept()
}

func (g *gatedListener) Close() error {
	err := g.Listener.Close()
	g.once.Do(func() { close(g.closed) })
	return err
}

// filterLen is how many instructions the socket's filter has (0: none).
// (0 also once the socket is closed).
func filterLen(rc syscall.RawConn) int {
	var n uint32
	rc.Control(func(fd uintptr) {
		l := uint32(0) // 0: ask the length only; it comes back in the option's length
		if _, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_GET_FILTER, 0, uintptr(unsafe.Pointer(&l)), 0); errno == 0 {
			n = l
		}
	})
	return int(n)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Connections the kernel completed but Serve had not accepted when the
// server shuts down are served, not reset: their clients connected and
// sent a request. Before quiesce, Shutdown closed the listener and the
// kernel reset every one of them.
func TestShutdownServesTheAcceptQueue(t *testing.T) {
	ln, err := listenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedListener{Listener: ln, open: make(chan struct{}), closed: make(chan struct{})}
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "answered "+r.URL.Path)
	}))
	var arr arrivals
	arr.serve(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(g) }()

	const n = 16
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /"+string(rune('a'+i))+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	waitUntil(t, "the connections in the accept queue", func() bool {
		q, err := acceptQueue(rc)
		return err == nil && q == n
	})

	// The accept loop resumes once shutdown has begun: the SYN filter is
	// on, or (without it) the listener is closed.
	go func() {
		for filterLen(rc) == 0 {
			select {
			case <-g.closed:
				close(g.open)
				return
			case <-time.After(time.Millisecond):
			}
		}
		close(g.open)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := shutdownHTTP(ctx, srv, ln, &arr, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	for i, c := range conns {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Errorf("connection %d, dialled and its request sent before the shutdown: %v", i, err)
			continue
		}
		b, err := io.ReadAll(resp.Body)
		if want := "answered /" + string(rune('a'+i)); resp.StatusCode != 200 || string(b) != want || err != nil {
			t.Errorf("connection %d: %d %q %v, want 200 %q", i, resp.StatusCode, b, err, want)
		}
	}
}

// The filter quiesce attaches, on this kernel: a listener with it answers
// no SYN (the connection attempt does not complete) and counts no
// handshake under way; a connection with it (as children accepted later
// inherit it) carries data both ways and its close.
func TestSYNDropFilter(t *testing.T) {
	ln, rc := rawListener(t)
	// Connected before the filter: its server side gets the filter below.
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	if err := dropSYNs(rc); err != nil {
		t.Fatal(err)
	}
	if got := filterLen(rc); got != len(synDropFilter) {
		t.Fatalf("the listener's filter has %d instructions, want %d", got, len(synDropFilter))
	}
	// The SYN is dropped: no SYN-ACK, so no connection within the time a
	// loopback connect takes many times over, and no handshake under way.
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), 300*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("a connection was made to a listener dropping SYNs")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("connecting to a listener dropping SYNs: %v, want a timeout", err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	if h, err := sockdiag.Handshakes(port); err != nil || h != 0 {
		t.Errorf("handshakes under way: %d %v", h, err)
	}
	if q, err := acceptQueue(rc); err != nil || q != 0 {
		t.Errorf("accept queue: %d %v", q, err)
	}

	src, err := server.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := dropSYNs(src); err != nil {
		t.Fatal(err)
	}
	payload := strings.Repeat("0123456789abcdef", 64<<10) // 1 MB, many segments
	go func() {
		io.WriteString(client, payload)
		client.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(server)
	if err != nil || string(got) != payload {
		t.Fatalf("to the filtered side: %d bytes, %v; want %d and EOF", len(got), err, len(payload))
	}
	go func() {
		io.WriteString(server, payload)
		server.Close()
	}()
	if got, err = io.ReadAll(client); err != nil || string(got) != payload {
		t.Fatalf("from the filtered side: %d bytes, %v; want %d and EOF", len(got), err, len(payload))
	}
}

// acceptQueue counts a connection the kernel completed and nobody
// accepted, which sockdiag.Handshakes no longer counts: quiesce waits for
// the first to be 0 once the second is.
func TestAcceptQueue(t *testing.T) {
	ln, rc := rawListener(t)
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	if q, err := acceptQueue(rc); err != nil || q != 0 {
		t.Fatalf("an idle listener's accept queue: %d, %v", q, err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitUntil(t, "the connection in the accept queue, no handshake under way", func() bool {
		h, err := sockdiag.Handshakes(port)
		q, qerr := acceptQueue(rc)
		if err != nil || qerr != nil {
			t.Fatal(err, qerr)
		}
		return h == 0 && q == 1
	})
}

// rawListener is a plain TCP listener on loopback, closed with the test,
// and its socket.
func rawListener(t *testing.T) (*net.TCPListener, syscall.RawConn) {
	t.Helper()
	ln, err := listenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	rc, err := ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return ln, rc
}
