package lambdart

import (
	"log/slog"
	"net"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/sandbox"
)

// TestPeerListenerRefusesAnotherUser: a connection from a socket owned by
// another user is closed unread, the function's own is accepted; on a
// listener made at the start and on one made ahead (Spares).
func TestPeerListenerRefusesAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to own a socket as another user")
	}
	for _, ahead := range []bool{false, true} {
		t.Run(map[bool]string{false: "made at the start", true: "made ahead"}[ahead], func(t *testing.T) {
			rt := New(Options{Function: &config.Function{Name: "t-peer"}, Isolation: &sandbox.Isolation{UID: 4242, GID: 4242},
				Logger: slog.New(slog.DiscardHandler)})
			if ahead {
				sp := NewSpares(1, slog.New(slog.DiscardHandler))
				defer sp.Close()
				rt.o.Spares = sp
				sp.refill(rt)
				waitSpare(t, sp, rt)
			}
			pl, err := rt.apiListener("i-peer")
			if err != nil {
				t.Fatal(err)
			}
			defer pl.Close()
			if _, ok := pl.(*peerListener); !ok {
				t.Fatalf("an isolated function's Runtime API listener is a %T, not a peerListener", pl)
			}
			if got := rt.o.Spares.take(rt); got != nil {
				got.Close()
				t.Fatal("the listener made ahead is still held after it was handed out")
			}
			refusesAnotherUser(t, pl)
		})
	}
}

// refusesAnotherUser checks pl, a Runtime API listener for user 4242.
func refusesAnotherUser(t *testing.T, pl net.Listener) {
	t.Helper()
	const other = 65534 // another user (sockdiag.UID naming it: internal/sockdiag's tests)
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
		c, err := net.Dial("tcp", pl.Addr().String())
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
