package sockdiag

import (
	"io"
	"net"
	"os"
	"runtime"
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

func TestUID(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		t.Run(tc.network, func(t *testing.T) {
			c, s := pair(t, tc.network, tc.addr, -1)
			// The client's socket: its local address is the server's remote one.
			uid, err := UID(s.RemoteAddr().(*net.TCPAddr), s.LocalAddr().(*net.TCPAddr))
			if err != nil || uid != uint32(os.Geteuid()) {
				t.Fatalf("the client socket's owner: %d, %v; want %d", uid, err, os.Geteuid())
			}
			// The other end of the pair is another socket, the same owner.
			if uid, err := UID(c.RemoteAddr().(*net.TCPAddr), c.LocalAddr().(*net.TCPAddr)); err != nil || uid != uint32(os.Geteuid()) {
				t.Fatalf("the server socket's owner: %d, %v", uid, err)
			}
			// A 4-tuple no socket has.
			gone := *s.RemoteAddr().(*net.TCPAddr)
			gone.Port = s.LocalAddr().(*net.TCPAddr).Port
			if uid, err := UID(&gone, s.LocalAddr().(*net.TCPAddr)); err == nil {
				t.Fatalf("no such socket, found owner %d", uid)
			}
		})
	}
	t.Run("another user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to own a socket as another user")
		}
		const other = 65534
		_, s := pair(t, "tcp4", "127.0.0.1:0", other)
		if uid, err := UID(s.RemoteAddr().(*net.TCPAddr), s.LocalAddr().(*net.TCPAddr)); err != nil || uid != other {
			t.Fatalf("owner %d, %v; want %d", uid, err, other)
		}
	})
	if _, err := UID(&net.TCPAddr{}, &net.TCPAddr{}); err == nil {
		t.Fatal("no IP address, no error")
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

// BenchmarkSocketUID: the exact lookup against netlink.SocketGet, which
// asks the same as a dump of every TCP socket.
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
	b.Run("netlink.SocketGet", func(b *testing.B) {
		for b.Loop() {
			if _, err := netlink.SocketGet(from, to); err != nil {
				b.Fatal(err)
			}
		}
	})
}
