package server

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// echoWriter buffers the functions' log lines on their way to Stoke's own
// stderr and writes them out every few milliseconds, so echoing logs costs
// the request path a copy, not three write syscalls per request.
type echoWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

const echoFlushEvery = 50 * time.Millisecond

func newEchoWriter(out io.Writer) *echoWriter {
	e := &echoWriter{w: bufio.NewWriterSize(out, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go e.loop()
	return e
}

func (e *echoWriter) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.w.Write(p)
}

func (e *echoWriter) loop() {
	defer close(e.done)
	t := time.NewTicker(echoFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			e.flush()
			return
		case <-t.C:
			e.flush()
		}
	}
}

func (e *echoWriter) flush() {
	e.mu.Lock()
	_ = e.w.Flush()
	e.mu.Unlock()
}

// Close writes out what is buffered and stops the flusher.
func (e *echoWriter) Close() {
	close(e.stop)
	<-e.done
}
