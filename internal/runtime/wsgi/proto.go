package wsgirt

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
)

// Frames on an instance connection (see shim.py): a 4-byte big-endian
// length of what follows, a type byte, a payload.
const (
	frameGo       = 'I' // Stoke → forked instance: you are in your cgroup
	frameRequest  = 'Q' // Stoke → instance: request head (JSON)
	frameBody     = 'B' // Stoke → instance: body chunk; empty ends the body
	frameHello    = 'h' // plain instance → Stoke: {"id", "pid"}
	frameReady    = 'R' // instance → Stoke: {"init_ms"}
	frameInitErr  = 'E' // instance → Stoke: init failed (errorPayload)
	frameHead     = 'H' // instance → Stoke: response head (JSON)
	frameData     = 'D' // instance → Stoke: response body chunk
	frameEnd      = 'Z' // instance → Stoke: response complete
	frameAppError = 'X' // instance → Stoke: the app raised (errorPayload)

	// maxFrame bounds a frame from the shim; it sends data in 1 MiB chunks.
	maxFrame = 8 << 20
)

// errorPayload is how the shim reports a Python exception, in Lambda's words.
type errorPayload struct {
	ErrorType    string     `json:"errorType"`
	ErrorMessage string     `json:"errorMessage"`
	StackTrace   []string   `json:"stackTrace"`
	Started      bool       `json:"started"` // X: the response head was already sent
	Python       PythonInfo `json:"python"`  // init errors: the interpreter that failed
}

// requestHead is what the shim builds the WSGI environ from.
type requestHead struct {
	Method     string      `json:"method"`
	Path       string      `json:"path"` // escaped; the shim unquotes it into PATH_INFO
	Query      string      `json:"query"`
	Proto      string      `json:"proto"`
	Host       string      `json:"host"`
	Scheme     string      `json:"scheme"`
	RemoteAddr string      `json:"remote_addr"`
	RemotePort string      `json:"remote_port,omitempty"`
	Headers    [][2]string `json:"headers"`
	Length     int64       `json:"length"` // -1: unknown (chunked)
}

type responseHead struct {
	Status  string      `json:"status"` // "200 OK"
	Headers [][2]string `json:"headers"`
}

func writeFrame(w *bufio.Writer, typ byte, payload []byte) error {
	var h [5]byte
	binary.BigEndian.PutUint32(h[:4], uint32(len(payload)+1))
	h[4] = typ
	w.Write(h[:])
	w.Write(payload)
	return w.Flush()
}

func writeJSON(w *bufio.Writer, typ byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFrame(w, typ, b)
}

// readFrame reads one frame; the payload is valid until the next call when
// buf is reused.
func readFrame(r *bufio.Reader, buf []byte) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[:4])
	if n == 0 || n > maxFrame {
		return 0, nil, fmt.Errorf("protocol: frame of %d bytes", n)
	}
	n--
	if uint32(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	return h[4], buf, nil
}
