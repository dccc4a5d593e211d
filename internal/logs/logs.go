// Package logs is a function's log: its app's stdout/stderr lines and the
// platform's START/END/REPORT lines in one stream, persisted to the store
// and fanned out live to followers (CLI `logs -f`, dashboard).
//
// Writing never waits on a reader: functions must not stall because a
// follower's terminal is slow.
package logs

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/stokehq/stoke/internal/store"
)

// Sink persists lines without blocking; *store.Store is one.
type Sink interface{ AddLog(store.LogLine) }

// subBuffer is how many lines a subscriber may fall behind before it
// starts missing lines.
const subBuffer = 256

// Hub timestamps, persists and fans out log lines.
type Hub struct {
	// Echo, when set before the first Write, also receives every line as
	// "[fn] text\n" (Stoke's own stdout). Echo writes are synchronous, so it
	// must be a fast writer.
	Echo io.Writer

	sink   Sink
	mu     sync.Mutex
	subs   map[*sub]struct{}
	echoMu sync.Mutex
}

type sub struct {
	function string // "" for all functions
	ch       chan store.LogLine
	missed   int // lines not delivered since the last marker
}

// New returns a Hub persisting to st (nil: not persisted).
func New(st Sink) *Hub {
	return &Hub{sink: st, subs: map[*sub]struct{}{}}
}

// Write adds one line of function's log. stream is store.StreamStdout,
// StreamStderr or StreamPlatform. A trailing newline is trimmed.
func (h *Hub) Write(function, instance, stream, text string) {
	l := store.LogLine{
		Function: function,
		Time:     time.Now(),
		Stream:   stream,
		Instance: instance,
		Text:     strings.TrimRight(text, "\r\n"),
	}
	if h.sink != nil {
		h.sink.AddLog(l)
	}
	if h.Echo != nil {
		h.echoMu.Lock()
		fmt.Fprintf(h.Echo, "[%s] %s\n", function, l.Text)
		h.echoMu.Unlock()
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.function != "" && s.function != function {
			continue
		}
		s.deliver(l)
	}
}

// deliver sends l without blocking. A subscriber that missed lines first
// gets a platform marker saying how many, so a gap is never silent.
func (s *sub) deliver(l store.LogLine) {
	if s.missed > 0 {
		marker := store.LogLine{
			Function: l.Function,
			Time:     l.Time,
			Stream:   store.StreamPlatform,
			Text:     fmt.Sprintf("[stoke] %d log lines dropped: follower too slow", s.missed),
		}
		select {
		case s.ch <- marker:
			s.missed = 0
		default:
			s.missed++
			return
		}
	}
	select {
	case s.ch <- l:
	default:
		s.missed++
	}
}

// Subscribe follows function's log ("" for every function) from now on.
// Lines come with Seq 0: they are delivered before the store assigns it.
// cancel closes the channel; call it when done.
func (h *Hub) Subscribe(function string) (<-chan store.LogLine, func()) {
	s := &sub{function: function, ch: make(chan store.LogLine, subBuffer)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, s)
			close(s.ch) // under mu, so no Write is sending to it
			h.mu.Unlock()
		})
	}
}
