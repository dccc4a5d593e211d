package lambdart

import (
	"log/slog"
	"net"
	"sync"
)

// Spares keeps Runtime API listeners made ahead, one per function version
// (Runtime) whose instance cold-started lately, so that the next cold
// start of it does not listen, nor open the peer check's netlink socket,
// while the request waits (on a CPU back from idle, ~0.1 ms each;
// docs/BENCHMARKS.md). It is the listener's part of what the sandbox's
// prepared stubs do (internal/sandbox/prepare.go), with the same bounds:
// at most max, the least recently made dropped first, and Discard closes
// them all whenever the functions change.
//
// A spare is handed only to an instance of the Runtime it was made for:
// it listens on the host's loopback with that function's peer check, and
// connections queued on it before it is claimed are closed unread
// (dropEarly). A function with `network: none` gets none: its Runtime API
// listens in the instance's own network namespace.
//
// A nil *Spares keeps none.
type Spares struct {
	max int
	log *slog.Logger

	mu     sync.Mutex
	gen    uint64 // Discard's count: a listener made before it is not kept
	closed bool
	held   []spare                    // least recently made first
	making map[*Runtime]chan struct{} // closed when the one under way is kept or closed
}

type spare struct {
	rt *Runtime
	l  net.Listener
}

// NewSpares returns a Spares that keeps at most max listeners.
func NewSpares(max int, log *slog.Logger) *Spares {
	if log == nil {
		log = slog.Default()
	}
	return &Spares{max: max, log: log, making: map[*Runtime]chan struct{}{}}
}

// take hands out rt's spare listener, its backlog emptied, or nil.
func (s *Spares) take(rt *Runtime) net.Listener {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	var l net.Listener
	for i, sp := range s.held {
		if sp.rt == rt {
			l = sp.l
			s.held = append(s.held[:i], s.held[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	if l == nil {
		return nil
	}
	if n := dropEarly(l); n > 0 {
		s.log.Warn("Runtime API: closed connections made to a listener before its instance existed",
			"function", rt.o.Function.Name, "connections", n)
	}
	return l
}

// refill makes a spare for rt in the background, unless it has one or one
// is under way. The caller is a cold start whose process is starting: the
// listener is made while the bootstrap initializes, not while a request
// waits for it.
func (s *Spares) refill(rt *Runtime) {
	if s == nil || s.max <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || rt.sparesClosed || s.making[rt] != nil {
		return
	}
	for _, sp := range s.held {
		if sp.rt == rt {
			return
		}
	}
	done := make(chan struct{})
	s.making[rt] = done
	gen := s.gen
	go func() {
		defer close(done)
		l, err := rt.listen()
		s.mu.Lock()
		delete(s.making, rt)
		if err != nil {
			s.mu.Unlock()
			s.log.Warn("Runtime API: cannot make a listener ahead; the next cold start makes its own",
				"function", rt.o.Function.Name, "err", err)
			return
		}
		var drop []net.Listener
		if s.closed || rt.sparesClosed || gen != s.gen {
			drop = append(drop, l) // discarded while it was made
		} else {
			s.held = append(s.held, spare{rt: rt, l: l})
			for len(s.held) > s.max {
				drop = append(drop, s.held[0].l)
				s.held = s.held[1:]
			}
		}
		s.mu.Unlock()
		closeAll(drop)
	}()
}

// drop closes rt's spare and makes no more for it (Runtime.Close); it
// returns once nothing of rt's is left, a listener under way included.
func (s *Spares) drop(rt *Runtime) {
	if s == nil {
		return
	}
	s.mu.Lock()
	rt.sparesClosed = true
	var drop []net.Listener
	for i, sp := range s.held {
		if sp.rt == rt {
			drop = append(drop, sp.l)
			s.held = append(s.held[:i], s.held[i+1:]...)
			break
		}
	}
	making := s.making[rt]
	s.mu.Unlock()
	closeAll(drop)
	if making != nil {
		<-making // it sees sparesClosed and closes what it made
	}
}

// Discard closes every spare; the server calls it whenever the functions
// change, with the sandbox's DiscardPrepared. It returns once they are
// closed, those under way included.
func (s *Spares) Discard() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.gen++
	s.discardLocked()
}

// Close closes every spare and makes no more; it returns once none is
// left and no goroutine of s runs.
func (s *Spares) Close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.closed = true
	s.discardLocked()
}

// discardLocked closes what is held, waits for what is under way, and
// unlocks s.mu.
func (s *Spares) discardLocked() {
	var drop []net.Listener
	for _, sp := range s.held {
		drop = append(drop, sp.l)
	}
	s.held = nil
	var making []chan struct{}
	for _, c := range s.making {
		making = append(making, c)
	}
	s.mu.Unlock()
	closeAll(drop)
	for _, c := range making {
		<-c
	}
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}
