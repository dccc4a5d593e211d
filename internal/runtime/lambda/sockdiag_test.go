package lambdart

import (
	"log/slog"
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// loopbackPair is a connected TCP pair on loopback; client's socket is
// made while the thread's filesystem uid is fsuid (its owner for
// sock_diag), when fsuid ≥ 0.
func loopbackPair(t testing.TB, fsuid int) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if fsuid >= 0 {
		// setfsuid is per thread: the socket made on this one is owned by fsuid.
		runtime.LockOSThread()
		prev, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, uintptr(fsuid), 0, 0)
		defer func() {
			unix.RawSyscall(unix.SYS_SETFSUID, prev, 0, 0)
			runtime.UnlockOSThread()
		}()
	}
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

func TestSocketUID(t *testing.T) {
	c, s := loopbackPair(t, -1)
	uid, err := socketUID(s.RemoteAddr().(*net.TCPAddr), s.LocalAddr().(*net.TCPAddr))
	if err != nil || uid != uint32(os.Geteuid()) {
		t.Fatalf("the client socket's owner: %d, %v; want %d", uid, err, os.Geteuid())
	}
	// The other end of the pair is another socket, the same owner.
	if uid, err := socketUID(c.RemoteAddr().(*net.TCPAddr), c.LocalAddr().(*net.TCPAddr)); err != nil || uid != uint32(os.Geteuid()) {
		t.Fatalf("the server socket's owner: %d, %v", uid, err)
	}
	// A 4-tuple no socket has.
	gone := *s.RemoteAddr().(*net.TCPAddr)
	gone.Port = s.LocalAddr().(*net.TCPAddr).Port
	if uid, err := socketUID(&gone, s.LocalAddr().(*net.TCPAddr)); err == nil {
		t.Fatalf("no such socket, found owner %d", uid)
	}
}

// TestPeerListenerRefusesAnotherUser: a connection from a socket owned by
// another user is closed unread, the function's own is accepted.
func TestPeerListenerRefusesAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to own a socket as another user")
	}
	const other = 65534
	c, s := loopbackPair(t, other)
	uid, err := socketUID(s.RemoteAddr().(*net.TCPAddr), s.LocalAddr().(*net.TCPAddr))
	if err != nil || uid != other {
		t.Fatalf("owner %d, %v; want %d", uid, err, other)
	}
	_ = c

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := peerListener{Listener: l, uid: 4242, log: slog.New(slog.DiscardHandler)}
	defer pl.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := pl.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	dial := func(fsuid int) net.Conn {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		prev, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, uintptr(fsuid), 0, 0)
		defer unix.RawSyscall(unix.SYS_SETFSUID, prev, 0, 0)
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	refused := dial(other)
	defer refused.Close()
	// The listener closes it: a read ends.
	if n, err := refused.Read(make([]byte, 1)); err == nil {
		t.Fatalf("another user's connection was kept (read %d bytes)", n)
	}
	own := dial(4242)
	defer own.Close()
	got := <-accepted
	if got == nil {
		t.Fatal("the function's own connection was not accepted")
	}
	defer got.Close()
	if got.RemoteAddr().String() != own.LocalAddr().String() {
		t.Fatalf("accepted %s, want the function's %s", got.RemoteAddr(), own.LocalAddr())
	}
}

// BenchmarkSocketUID: the exact lookup against netlink.SocketGet, which
// asks the same as a dump of every TCP socket.
func BenchmarkSocketUID(b *testing.B) {
	_, s := loopbackPair(b, -1)
	from, to := s.RemoteAddr().(*net.TCPAddr), s.LocalAddr().(*net.TCPAddr)
	b.Run("exact", func(b *testing.B) {
		for b.Loop() {
			if _, err := socketUID(from, to); err != nil {
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
