package lambdart

import (
	"errors"
	"log/slog"
	"net"
	"strconv"

	"github.com/stokehq/stoke/internal/sockdiag"
)

// peerListener accepts only connections whose socket belongs to the
// function's user: the Runtime API listens on loopback, where any process
// on the host can connect, and a neighbour must not poll another
// function's events or post its answers. The kernel is asked who owns the
// connecting socket (sock_diag, a lookup of the exact 4-tuple: no
// /proc/net/tcp scan, no dump; internal/sockdiag), once per connection, on
// a netlink socket the listener keeps (opened with it, ahead of the
// bootstrap's first connection, which a cold start waits for); the
// bootstrap keeps its connection alive.
//
// Instances of the same function share its user, so this separates
// functions, not the instances of one (docs/SECURITY.md). A function with
// `network: none` has its own loopback and needs no check.
type peerListener struct {
	net.Listener
	uid  uint32
	diag *sockdiag.Socket
	log  *slog.Logger // the function's
	// instance is the one it serves, named when it is claimed (a listener
	// made ahead has none until then).
	instance string
}

var errNotTCP = errors.New("not a TCP connection")

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		// The client's socket: its local address is our remote one.
		var uid uint32
		err = errNotTCP
		from, fok := c.RemoteAddr().(*net.TCPAddr)
		to, tok := c.LocalAddr().(*net.TCPAddr)
		if fok && tok {
			uid, err = l.diag.UID(from, to)
		}
		if err == nil && uid == l.uid {
			return c, nil
		}
		owner := "unknown: " + errString(err)
		if err == nil {
			owner = "uid " + strconv.FormatUint(uint64(uid), 10)
		}
		l.log.Warn("Runtime API: refused a connection from another user's process", "instance", l.instance, "from", c.RemoteAddr().String(), "owner", owner, "want_uid", l.uid)
		c.Close()
	}
}

// Close closes the listener and its netlink socket.
func (l *peerListener) Close() error {
	err := l.Listener.Close()
	l.diag.Close()
	return err
}
