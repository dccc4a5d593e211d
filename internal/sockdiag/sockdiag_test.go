package sockdiag

import (
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// pair is a connected TCP pair on loopback, closed with the test. With
// fsuid ≥ 0 the client's socket is made while the thread's filesystem uid
// is fsuid, which makes fsuid its owner for sock_diag.
func pair(t testing.TB, network, addr string, fsuid int) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	defer l.Close()
	if fsuid >= 0 {
		// setfsuid is per thread: the socket made on this one is fsuid's.
		runtime.LockOSThread()
		prev, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, uintptr(fsuid), 0, 0)
		defer func() {
			unix.RawSyscall(unix.SYS_SETFSUID, prev, 0, 0)
			runtime.UnlockOSThread()
		}()
	}
	if client, err = net.Dial(network, l.Addr().String()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if server, err = l.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// lookups are the two ways to ask: a netlink socket per question, and a
// kept one (opened for the test, closed with it).
func lookups(t *testing.T) map[string]func(local, remote *net.TCPAddr) (uint32, error) {
	kept, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kept.Close)
	return map[string]func(local, remote *net.TCPAddr) (uint32, error){"UID": UID, "Socket.UID": kept.UID}
}

func TestUID(t *testing.T) {
	for name, lookup := range lookups(t) {
		t.Run(name, func(t *testing.T) {
			for _, tc := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
				t.Run(tc.network, func(t *testing.T) {
					c, s := pair(t, tc.network, tc.addr, -1)
					// The client's socket: its local address is the server's remote one.
					uid, err := lookup(s.RemoteAddr().(*net.TCPAddr), s.LocalAddr().(*net.TCPAddr))
					if err != nil || uid != uint32(os.Geteuid()) {
						t.Fatalf("the client socket's owner: %d, %v; want %d", uid, err, os.Geteuid())
					}
					// The other end of the pair is another socket, the same owner.
					if uid, err := lookup(c.RemoteAddr().(*net.TCPAddr), c.LocalAddr().(*net.TCPAddr)); err != nil || uid != uint32(os.Geteuid()) {
						t.Fatalf("the server socket's owner: %d, %v", uid, err)
					}
					// A 4-tuple no socket has.
					gone := *s.RemoteAddr().(*net.TCPAddr)
					gone.Port = s.LocalAddr().(*net.TCPAddr).Port
					if uid, err := lookup(&gone, s.LocalAddr().(*net.TCPAddr)); err == nil {
						t.Fatalf("no such socket, found owner %d", uid)
					}
					// The failed question leaves the (kept) socket in step.
					if uid, err := lookup(s.RemoteAddr().(*net.TCPAddr), s.LocalAddr().(*net.TCPAddr)); err != nil || uid != uint32(os.Geteuid()) {
						t.Fatalf("after a failed lookup: %d, %v", uid, err)
					}
				})
			}
			t.Run("another user", func(t *testing.T) {
				if os.Geteuid() != 0 {
					t.Skip("needs root to own a socket as another user")
				}
				const other = 65534
				_, s := pair(t, "tcp4", "127.0.0.1:0", other)
				if uid, err := lookup(s.RemoteAddr().(*net.TCPAddr), s.LocalAddr().(*net.TCPAddr)); err != nil || uid != other {
					t.Fatalf("owner %d, %v; want %d", uid, err, other)
				}
			})
			if _, err := lookup(&net.TCPAddr{}, &net.TCPAddr{}); err == nil {
				t.Fatal("no IP address, no error")
			}
		})
	}
}

// A closed Socket answers no more questions.
func TestSocketClose(t *testing.T) {
	s, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	_, srv := pair(t, "tcp4", "127.0.0.1:0", -1)
	s.Close()
	if uid, err := s.UID(srv.RemoteAddr().(*net.TCPAddr), srv.LocalAddr().(*net.TCPAddr)); err == nil {
		t.Fatalf("a closed socket answered: owner %d", uid)
	}
}

// Handshakes counts the handshakes under way on a port. With
// TCP_DEFER_ACCEPT the kernel keeps a connected client's socket in
// SYN_RECV until its first data, which makes one to count.
func TestHandshakes(t *testing.T) {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rc, err := ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 30)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	count := func() int {
		t.Helper()
		n, err := Handshakes(port)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 0 {
		t.Fatalf("an idle listener: %d handshakes under way", n)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for deadline := time.Now().Add(20 * time.Second); count() != 1; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no handshake under way seen, %d", count())
		}
	}
	io.WriteString(c, "x")
	s, err := ln.Accept() // once the data came: the socket left SYN_RECV
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := count(); n != 0 {
		t.Fatalf("the connection accepted: %d handshakes under way, want 0", n)
	}
}

// BenchmarkSocketUID: the exact lookup, on a netlink socket per question
// and on a kept one, against netlink.SocketGet, which asks the same as a
// dump of every TCP socket.
func BenchmarkSocketUID(b *testing.B) {
	_, s := pair(b, "tcp4", "127.0.0.1:0", -1)
	from, to := s.RemoteAddr().(*net.TCPAddr), s.LocalAddr().(*net.TCPAddr)
	b.Run("exact", func(b *testing.B) {
		for b.Loop() {
			if _, err := UID(from, to); err != nil {
				b.Fatal(err)
			}
		}
	})
	kept, err := Open()
	if err != nil {
		b.Fatal(err)
	}
	defer kept.Close()
	b.Run("kept", func(b *testing.B) {
		for b.Loop() {
			if _, err := kept.UID(from, to); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("netlink.SocketGet", func(b *testing.B) {
		for b.Loop() {
			if _, err := netlink.SocketGet(from, to); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSocketUIDAfterIdle: the lookup as a cold start makes it, on a
// CPU back from 20 ms of idle, on a netlink socket per question and on a
// kept one, alternately; the medians in µs are the result:
//
//	go test -run '^$' -bench SocketUIDAfterIdle -benchtime 200x ./internal/sockdiag
func BenchmarkSocketUIDAfterIdle(b *testing.B) {
	_, s := pair(b, "tcp4", "127.0.0.1:0", -1)
	from, to := s.RemoteAddr().(*net.TCPAddr), s.LocalAddr().(*net.TCPAddr)
	kept, err := Open()
	if err != nil {
		b.Fatal(err)
	}
	defer kept.Close()
	var each, keep []time.Duration
	for b.Loop() {
		for i, lookup := range []func(local, remote *net.TCPAddr) (uint32, error){UID, kept.UID} {
			time.Sleep(20 * time.Millisecond)
			t0 := time.Now()
			if _, err := lookup(from, to); err != nil {
				b.Fatal(err)
			}
			if d := time.Since(t0); i == 0 {
				each = append(each, d)
			} else {
				keep = append(keep, d)
			}
		}
	}
	med := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2]) / float64(time.Microsecond)
	}
	b.ReportMetric(med(each), "per-question-µs")
	b.ReportMetric(med(keep), "kept-µs")
	b.ReportMetric(0, "ns/op")
}
