// Package sockdiag asks the Linux kernel about TCP sockets over sock_diag
// (NETLINK_INET_DIAG, one inet_diag_req_v2 per question), in the caller's
// network namespace: who owns the socket with a given 4-tuple (UID, the
// Lambda Runtime API's peer check) and how many handshakes are under way
// to a local port (Handshakes, the gateway's quiesce before a close).
//
// Hand-written on vishvananda/netlink's nl transport rather than its
// SocketGet or SocketDiagTCP: SocketGet asks for one socket with a dump
// (NLM_F_DUMP), for which the kernel walks every bucket of the TCP hash
// tables instead of looking the 4-tuple up (5,384 µs against 62 µs per
// lookup, docs/BENCHMARKS.md), and SocketDiagTCP dumps every socket in
// every state with its tcp_info, where a quiesce polling every 2 ms needs
// only the sockets in SYN_RECV.
package sockdiag

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// UID is the user owning the TCP socket whose local address is local and
// remote address remote: the exact lookup of that one socket by its
// 4-tuple. An error when no socket has it. It opens a netlink socket for
// the question; a caller with many, or with one that must be quick, keeps
// a Socket open.
func UID(local, remote *net.TCPAddr) (uint32, error) {
	return uid(nil, local, remote)
}

// Socket is a sock_diag socket kept open: a lookup on it is one send and
// one receive, where UID also opens, binds and closes a netlink socket
// (on a CPU back from idle, 53 µs a lookup against 155 µs; the Runtime
// API's peer check is on a Lambda cold start's path). Safe for concurrent
// use (nl serializes the requests on it).
type Socket struct {
	h *nl.SocketHandle
}

// Open opens a Socket in the caller's network namespace.
func Open() (*Socket, error) {
	// -1 is netns.None(): the namespace of the calling thread, no switch.
	s, err := nl.GetNetlinkSocketAt(-1, -1, unix.NETLINK_INET_DIAG)
	if err != nil {
		return nil, fmt.Errorf("open sock_diag socket: %w", err)
	}
	// The bounds nl puts on a socket it opens per request.
	if err := s.SetSendTimeout(&nl.SocketTimeoutTv); err == nil {
		err = s.SetReceiveTimeout(&nl.SocketTimeoutTv)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open sock_diag socket: %w", err)
	}
	return &Socket{h: &nl.SocketHandle{Socket: s}}, nil
}

// UID is the package's UID, asked on s.
func (s *Socket) UID(local, remote *net.TCPAddr) (uint32, error) {
	return uid(s, local, remote)
}

// Close closes the socket.
func (s *Socket) Close() {
	s.h.Close()
}

func uid(s *Socket, local, remote *net.TCPAddr) (uint32, error) {
	r, err := exact(local, remote)
	if err != nil {
		return 0, err
	}
	req := nl.NewNetlinkRequest(nl.SOCK_DIAG_BY_FAMILY, 0) // NLM_F_REQUEST only: one socket
	if s != nil {
		// A kept socket: nl numbers the request on it and skips any late
		// answer to an earlier one.
		req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_INET_DIAG: s.h}
	}
	req.AddData(r)
	msgs, err := req.Execute(unix.NETLINK_INET_DIAG, nl.SOCK_DIAG_BY_FAMILY)
	if err != nil {
		return 0, fmt.Errorf("sock_diag %s→%s: %w", local, remote, err)
	}
	if len(msgs) != 1 {
		return 0, fmt.Errorf("sock_diag %s→%s: %d answers, want 1", local, remote, len(msgs))
	}
	return r.uid(msgs[0])
}

// Handshakes counts the TCP handshakes under way (SYN_RECV) to a local
// port, IPv4 and IPv6 (an IPv6 listener takes IPv4 clients too). A dump
// the kernel reports as interrupted (the list changed while it was read)
// counts one more, so a caller waiting for none looks again.
func Handshakes(port uint16) (int, error) {
	n := 0
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		req := nl.NewNetlinkRequest(nl.SOCK_DIAG_BY_FAMILY, unix.NLM_F_DUMP)
		req.AddData(&request{family: family, states: 1 << unix.BPF_TCP_SYN_RECV})
		msgs, err := req.Execute(unix.NETLINK_INET_DIAG, nl.SOCK_DIAG_BY_FAMILY)
		if errors.Is(err, nl.ErrDumpInterrupted) {
			n++
		} else if err != nil {
			return 0, fmt.Errorf("listing handshakes under way: %w", err)
		}
		for _, m := range msgs {
			// inet_diag_msg: byte 1 the state, bytes 4–5 the local port.
			if len(m) >= 6 && m[1] == unix.BPF_TCP_SYN_RECV && binary.BigEndian.Uint16(m[4:6]) == port {
				n++
			}
		}
	}
	return n, nil
}

// request is struct inet_diag_req_v2 (linux/inet_diag.h) for TCP sockets
// in states. With exact set, it names one socket by its 4-tuple; without,
// the socket id is all zero, which a dump reads as every socket.
type request struct {
	family       uint8
	states       uint32 // a bit per TCP state
	exact        bool
	sport, dport uint16 // host order; sent in network order
	src, dst     [16]byte
}

const (
	sizeofReq = 56 // inet_diag_req_v2
	sizeofMsg = 72 // inet_diag_msg
	uidOffset = 64 // of idiag_uid in inet_diag_msg
)

// exact is the request for the one socket with this 4-tuple, in any state.
func exact(local, remote *net.TCPAddr) (*request, error) {
	r := &request{states: 0xffffffff, exact: true, sport: uint16(local.Port), dport: uint16(remote.Port)}
	l4, r4 := local.IP.To4(), remote.IP.To4()
	switch {
	case l4 != nil && r4 != nil:
		r.family = unix.AF_INET
		copy(r.src[:], l4)
		copy(r.dst[:], r4)
	case local.IP.To16() != nil && remote.IP.To16() != nil:
		r.family = unix.AF_INET6
		copy(r.src[:], local.IP.To16())
		copy(r.dst[:], remote.IP.To16())
	default:
		return nil, errors.New("sock_diag: not an IP address")
	}
	return r, nil
}

func (r *request) Len() int { return sizeofReq }

func (r *request) Serialize() []byte {
	b := make([]byte, sizeofReq)
	ne := nl.NativeEndian()
	b[0], b[1] = r.family, unix.IPPROTO_TCP
	ne.PutUint32(b[4:], r.states)
	if !r.exact {
		return b
	}
	binary.BigEndian.PutUint16(b[8:], r.sport)
	binary.BigEndian.PutUint16(b[10:], r.dport)
	copy(b[12:28], r.src[:])
	copy(b[28:44], r.dst[:])
	// b[44:48]: any interface
	ne.PutUint32(b[48:], nl.TCPDIAG_NOCOOKIE)
	ne.PutUint32(b[52:], nl.TCPDIAG_NOCOOKIE)
	return b
}

// uid reads the owner from the kernel's answer (inet_diag_msg: family,
// state, timer, retrans, the ports big-endian, ...), after checking it is
// about the socket asked for.
func (r *request) uid(m []byte) (uint32, error) {
	if len(m) < sizeofMsg {
		return 0, fmt.Errorf("sock_diag: short answer (%d bytes)", len(m))
	}
	if m[0] != r.family || binary.BigEndian.Uint16(m[4:]) != r.sport || binary.BigEndian.Uint16(m[6:]) != r.dport {
		return 0, errors.New("sock_diag: the answer is about another socket")
	}
	return nl.NativeEndian().Uint32(m[uidOffset:]), nil
}
