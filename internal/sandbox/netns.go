package sandbox

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// NetNS is a network namespace with only a loopback interface, for a
// function with `network: none`: its instance joins it (Isolation.NetNS),
// and Stoke reaches the instance by listening or dialling from inside it.
// Nothing else on the host can reach what listens there.
type NetNS struct {
	f *os.File
}

// NewNetNS makes a network namespace with lo up. It costs a few
// milliseconds (the kernel sets up a whole network stack).
func NewNetNS() (*NetNS, error) {
	var ns *NetNS
	err := onOtherNetNS(nil, func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("new network namespace: %w", err)
		}
		f, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			return err
		}
		ns = &NetNS{f: f}
		if err := loUp(); err != nil {
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ns, nil
}

// Close lets the namespace go once no process is in it.
func (n *NetNS) Close() error { return n.f.Close() }

// Listen listens in the namespace: the socket stays in it.
func (n *NetNS) Listen(network, addr string) (l net.Listener, err error) {
	err = onOtherNetNS(n, func() error {
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// DialContext connects from inside the namespace.
func (n *NetNS) DialContext(ctx context.Context, network, addr string) (c net.Conn, err error) {
	d := net.Dialer{}
	err = onOtherNetNS(n, func() error {
		// The socket is made (and its namespace fixed) before the dial
		// waits; the wait itself may continue on another thread.
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// onOtherNetNS runs f on a locked OS thread switched into n (or, with n
// nil, into whatever f unshares), then switches the thread back. A thread
// that cannot be switched back stays locked, so the Go runtime ends it
// instead of reusing it in the wrong namespace.
func onOtherNetNS(n *NetNS, f func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if n != nil {
		if err := unix.Setns(int(n.f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			return fmt.Errorf("enter network namespace: %w", err)
		}
	}
	ferr := f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("leave network namespace: %w (and %v)", err, ferr)
	}
	runtime.UnlockOSThread()
	return ferr
}

// loUp brings the loopback interface of the calling thread's network
// namespace up.
func loUp() error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}
