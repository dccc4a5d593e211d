// Package logs is a function's log: its app's stdout/stderr lines and the
// platform's START/END/REPORT lines in one stream, timestamped and
// persisted to the store (and echoed to Stoke's stdout with `serve -v`).
// Followers (`stoke logs -f`, the dashboard) read the store from a
// sequence number on, so a slow follower never misses a line and a
// function never waits for one.
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

// Hub timestamps, persists and echoes log lines.
type Hub struct {
	// Echo, when set before the first Write, also receives every line as
	// "[fn] text\n" (Stoke's own stdout). Echo writes are synchronous, so it
	// must be a fast writer.
	Echo io.Writer

	sink   Sink
	echoMu sync.Mutex
}

// New returns a Hub persisting to st (nil: not persisted).
func New(st Sink) *Hub {
	return &Hub{sink: st}
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
}
