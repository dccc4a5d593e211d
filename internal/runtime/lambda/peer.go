package lambdart

import (
	"log/slog"
	"net"
	"strconv"

	"github.com/vishvananda/netlink"
)

// peerListener accepts only connections whose socket belongs to the
// function's user: the Runtime API listens on loopback, where any process
// on the host can connect, and a neighbour must not poll another
// function's events or post its answers. The kernel is asked who owns the
// connecting socket (sock_diag, the exact 4-tuple: no /proc/net/tcp scan),
// once per connection; the bootstrap keeps its connection alive.
//
// Instances of the same function share its user, so this separates
// functions, not the instances of one (docs/SECURITY.md). A function with
// `network: none` has its own loopback and needs no check.
type peerListener struct {
	net.Listener
	uid uint32
	log *slog.Logger
}

func (l peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		// The client's socket: its local address is our remote one.
		s, err := netlink.SocketGet(c.RemoteAddr(), c.LocalAddr())
		if err == nil && s.UID == l.uid {
			return c, nil
		}
		owner := "unknown"
		if err == nil {
			owner = "uid " + strconv.FormatUint(uint64(s.UID), 10)
		}
		l.log.Warn("Runtime API: refused a connection from another user's process", "from", c.RemoteAddr().String(), "owner", owner, "want_uid", l.uid)
		c.Close()
	}
}
