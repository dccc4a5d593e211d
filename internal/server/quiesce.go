package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/stokehq/stoke/internal/sockdiag"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Closing a listening socket resets the connections waiting in its accept
// queue: the kernel completed their handshakes, so their clients connected
// and sent a request, and they read a reset instead of an answer (under
// load, with clients dialling often, a few are always waiting). quiesce
// makes the listener stop taking connections first, so closing it breaks
// none: a client is either answered or refused at connect.
//
// It attaches a socket filter that drops SYNs: a new connection attempt
// gets no SYN-ACK, and its retransmission (a second later) finds the port
// closed, a connect error. Handshakes already under way complete (their
// ACK passes) and land in the accept queue. It then waits until no
// handshake is under way on the port (no SYN_RECV socket, asked of
// sock_diag) and the accept queue is empty, the Serve loop still accepting
// meanwhile: after that nothing can arrive, and the caller closes the
// listener (http.Server.Shutdown), whose accepted connections are served.
//
// A handshake the client never completes (it vanished after its SYN) is
// waited for at most handshakeWait; the accept queue, until ctx is done.
// Connections accepted after the filter is attached inherit it; it only
// drops segments with SYN set and ACK clear, which an established
// connection never needs (a SYN on one is answered with a challenge ACK,
// RFC 5961, that could only reset it). The listener must be plain TCP
// (listenTCP): an MPTCP socket takes no filter.
func quiesce(ctx context.Context, ln *net.TCPListener) error {
	rc, err := ln.SyscallConn()
	if err != nil {
		return err
	}
	if err := dropSYNs(rc); err != nil {
		return fmt.Errorf("refusing new connections: %w", err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	handshakesUntil := time.Now().Add(handshakeWait)
	tick := time.NewTicker(quiescePoll)
	defer tick.Stop()
	for {
		// A SYN that passed before the filter was attached may still be on
		// its way to a SYN_RECV socket: the first look is one poll later.
		select {
		case <-ctx.Done():
			return fmt.Errorf("the accept queue is not emptied: %w", ctx.Err())
		case <-tick.C:
		}
		// In this order: with no handshake under way, nothing new can
		// join the accept queue once it is seen empty.
		n, err := sockdiag.Handshakes(port)
		if err != nil {
			return err
		}
		if n > 0 && time.Now().Before(handshakesUntil) {
			continue
		}
		if q, err := acceptQueue(rc); err != nil {
			return err
		} else if q == 0 {
			return nil
		}
	}
}

// shutdownHTTP stops srv, which serves ln with arr installed: no new
// connection, every one the kernel took is served (its first request
// reached the handler before Shutdown, which would drop it), Shutdown
// waits for requests in flight.
func shutdownHTTP(ctx context.Context, srv interface{ Shutdown(context.Context) error }, ln *net.TCPListener, arr *arrivals, log *slog.Logger) error {
	if err := quiesce(ctx, ln); err != nil {
		log.Warn("waiting for the connections under way before closing the listener", "addr", ln.Addr().String(), "err", err)
	} else if err := waitArrivals(ctx, arr); err != nil {
		log.Warn("waiting for the requests of connections just accepted", "addr", ln.Addr().String(), "err", err)
	}
	return srv.Shutdown(ctx)
}

// waitArrivals waits until every accepted connection's first request has
// reached the handler, or arrivalWait has passed: a client that connected
// and sends nothing is not waited for longer.
func waitArrivals(ctx context.Context, arr *arrivals) error {
	until := time.Now().Add(arrivalWait)
	tick := time.NewTicker(quiescePoll)
	defer tick.Stop()
	for arr.waiting() > 0 {
		if time.Now().After(until) {
			return fmt.Errorf("%d connections sent no request within %s", arr.waiting(), arrivalWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

const (
	// handshakeWait bounds the wait for handshakes under way: it covers a
	// SYN-ACK sent again once (after 1 s); a client that answers none later
	// is reset by the close, like one that connected after a crash.
	handshakeWait = 2 * time.Second
	quiescePoll   = 2 * time.Millisecond
	// arrivalWait bounds the wait for a connection accepted before the
	// close to send its request.
	arrivalWait = 2 * time.Second
)

// synDropFilter is a classic BPF socket filter; a TCP socket's filter sees
// the segment from its TCP header, whose byte 13 holds the flags.
var synDropFilter = mustAssemble([]bpf.Instruction{
	bpf.LoadAbsolute{Off: 13, Size: 1},
	bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x12}, // SYN | ACK
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x02, SkipTrue: 1},
	bpf.RetConstant{Val: 0xffffffff}, // the whole segment
	bpf.RetConstant{Val: 0},          // SYN without ACK: dropped
})

func mustAssemble(p []bpf.Instruction) []unix.SockFilter {
	raw, err := bpf.Assemble(p)
	if err != nil {
		panic(err)
	}
	f := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		f[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return f
}

// dropSYNs attaches synDropFilter to the socket.
func dropSYNs(rc syscall.RawConn) error {
	prog := unix.SockFprog{Len: uint16(len(synDropFilter)), Filter: &synDropFilter[0]}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog)
	}); err != nil {
		return err
	}
	return serr
}

// acceptQueue is how many connections wait in a listening socket's accept
// queue (TCP_INFO's unacked, for a listener).
func acceptQueue(rc syscall.RawConn) (int, error) {
	var info *unix.TCPInfo
	var serr error
	if err := rc.Control(func(fd uintptr) {
		info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, fmt.Errorf("reading the accept queue: %w", serr)
	}
	return int(info.Unacked), nil
}
