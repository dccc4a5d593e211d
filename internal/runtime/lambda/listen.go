package lambdart

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"

	"github.com/stokehq/stoke/internal/sockdiag"
)

// listen makes a Runtime API listener on the host's loopback for an
// instance of rt's function: with isolation, one that accepts only the
// function's user (peerListener). It depends on nothing but the function,
// so it can be made ahead of the instance (Spares).
func (rt *Runtime) listen() (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil || rt.o.Isolation == nil {
		return l, err
	}
	diag, err := sockdiag.Open()
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("the Runtime API's peer check: %w", err)
	}
	return &peerListener{Listener: l, uid: uint32(rt.o.Isolation.UID), diag: diag,
		log: rt.o.Logger.With("function", rt.o.Function.Name)}, nil
}

// apiListener is the Runtime API listener of instance id: one made ahead
// for rt, or a new one.
func (rt *Runtime) apiListener(id string) (net.Listener, error) {
	l := rt.o.Spares.take(rt)
	if l == nil {
		var err error
		if l, err = rt.listen(); err != nil {
			return nil, err
		}
	}
	if pl, ok := l.(*peerListener); ok {
		pl.instance = id
	}
	return l, nil
}

// dropEarly closes, unread, every connection waiting in l's backlog:
// called when a listener made ahead is claimed, before its instance's
// process exists, so none of them is the bootstrap's (it learns the port
// from its environment). Without it they would each cost a peer check on
// the cold start's path, and one of the function's own instances could
// have connected to the next one's Runtime API ahead. It returns how many
// there were.
func dropEarly(l net.Listener) int {
	const maxEarly = 1024
	if pl, ok := l.(*peerListener); ok {
		l = pl.Listener
	}
	tl, ok := l.(*net.TCPListener)
	if !ok {
		return 0
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	// Accept's deadline cannot be used to ask once (past it, Go returns
	// without asking the kernel), nor the raw connection's Read (a
	// listener's refuses). The socket is non-blocking: the loop ends at
	// EAGAIN, an empty backlog, or at maxEarly (a neighbour connecting as
	// fast as they are closed: the peer check refuses the rest).
	_ = rc.Control(func(fd uintptr) {
		for n < maxEarly {
			c, _, err := unix.Accept4(int(fd), unix.SOCK_CLOEXEC)
			if err == unix.EINTR || err == unix.ECONNABORTED {
				continue
			}
			if err != nil {
				return
			}
			unix.Close(c)
			n++
		}
	})
	return n
}
