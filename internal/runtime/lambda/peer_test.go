package lambdart

import (
	"log/slog"
	"net"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPeerListenerRefusesAnotherUser: a connection from a socket owned by
// another user is closed unread, the function's own is accepted.
func TestPeerListenerRefusesAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to own a socket as another user")
	}
	const other = 65534 // another user (sockdiag.UID naming it: internal/sockdiag's tests)
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
