package frontconn

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// response is the loop's http.ResponseWriter. It frames a response as
// net/http's server does: a handler that sets no Content-Length and
// finishes before sniffLen bytes without flushing gets one computed;
// otherwise the body is chunked, with trailers (http.TrailerPrefix). A
// missing Content-Type is sniffed, Date added, Connection: close said
// when the connection closes after it. HEAD responses carry no body.
type response struct {
	c          *conn
	req        *http.Request
	header     http.Header
	sent       http.Header // header as WriteHeader found it: what the head says
	status     int
	head       bool // HEAD
	committed  bool // the head is written
	chunked    bool
	bodyOK     bool  // the status allows a body
	declared   int64 // the handler's Content-Length, -1 if none
	written    int64
	closeAfter bool
	done       bool  // the handler returned: writes fail
	err        error // the connection's write failed
}

const sniffLen = 2048 // what net/http buffers before it chunks

func newResponse(c *conn, req *http.Request) *response {
	c.pre = c.pre[:0]
	return &response{c: c, req: req, header: make(http.Header), head: req.Method == "HEAD",
		closeAfter: req.Close, declared: -1}
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.committed || w.status >= 200 || w.done {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		// An informational response goes out at once (103 Early Hints).
		bw := w.c.bw
		bw.Write(statusLine(code))
		_ = w.header.Write(bw)
		bw.WriteString("\r\n")
		if err := bw.Flush(); err != nil {
			w.err = err
		}
		return
	}
	w.status = code
	if cl := w.header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			w.declared = n
		} else {
			w.header.Del("Content-Length") // as net/http: an invalid one is not sent
		}
	}
	// The head says what the header was now: a field set later (a
	// declared trailer's value) is not in it, as in net/http.
	w.sent = w.header.Clone()
}

func (w *response) Write(p []byte) (int, error) {
	if w.done {
		return 0, http.ErrHandlerTimeout
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.committed {
		// Buffered (a HEAD response's too: its length and type are
		// computed from what the handler writes, as net/http does).
		if len(w.c.pre)+len(p) <= sniffLen {
			w.c.pre = append(w.c.pre, p...)
			return len(p), nil
		}
		w.commit(false, p)
	}
	if w.head {
		return len(p), nil
	}
	w.body(p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// body writes p in the response's framing.
func (w *response) body(p []byte) {
	if len(p) == 0 || w.err != nil {
		return
	}
	bw := w.c.bw
	if w.chunked {
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, w.err = bw.WriteString("\r\n")
		return
	}
	_, w.err = bw.Write(p)
}

// FlushError sends what was written so far (http.ResponseController).
func (w *response) FlushError() error {
	if w.done {
		return http.ErrHandlerTimeout
	}
	if !w.committed {
		if w.status == 0 {
			w.WriteHeader(http.StatusOK)
		}
		w.commit(false, nil)
	}
	if w.err == nil {
		w.err = w.c.bw.Flush()
	}
	return w.err
}

func (w *response) Flush() { _ = w.FlushError() }

// EnableFullDuplex: the loop never consumes a request body behind the
// handler's back, so reading it while writing is always allowed.
func (w *response) EnableFullDuplex() error { return nil }

// commit writes the response head, then what was buffered. final says
// the handler returned (a Content-Length may then be computed); next is
// the write that did not fit the buffer (sniffed when nothing was
// buffered, as net/http sniffs the first bytes it frames).
func (w *response) commit(final bool, next []byte) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.committed = true
	h := w.sent
	w.bodyOK = bodyAllowed(w.status)
	pre := w.c.pre
	trailers := h["Trailer"] != nil
	if !trailers {
		for k := range h {
			if strings.HasPrefix(k, http.TrailerPrefix) {
				trailers = true
				break
			}
		}
	}
	var extra [4][2]string // fields the head gets beside h's
	ne := 0
	te := h.Get("Transfer-Encoding")
	_, hasCL := h["Content-Length"]
	switch {
	case !w.bodyOK:
	case te != "":
		if te == "identity" {
			w.closeAfter = true
		} else {
			w.chunked = true
			extra[ne] = [2]string{"Transfer-Encoding", "chunked"}
			ne++
		}
	case hasCL:
	case final && !trailers && (!w.head || len(pre) > 0):
		extra[ne] = [2]string{"Content-Length", strconv.Itoa(len(pre))}
		ne++
	case w.head:
	default:
		w.chunked = true
		extra[ne] = [2]string{"Transfer-Encoding", "chunked"}
		ne++
	}
	sniff := pre
	if len(sniff) == 0 {
		sniff = next
	}
	if _, ok := h["Content-Type"]; !ok && w.bodyOK && te == "" && len(sniff) > 0 {
		extra[ne] = [2]string{"Content-Type", http.DetectContentType(sniff)}
		ne++
	}
	if _, ok := h["Date"]; !ok {
		extra[ne] = [2]string{"Date", date()}
		ne++
	}
	if !w.closeAfter && w.req.ContentLength > maxDrain && !w.c.bodyDone.Load() {
		// The body may be left unread, too large to skip: the connection
		// closes after this response (as net/http says).
		w.closeAfter = true
	}
	if !w.closeAfter && httpHasToken(h["Connection"], "close") {
		w.closeAfter = true
	}
	if !w.closeAfter && w.c.s.down.Load() {
		w.closeAfter = true
	}
	bw := w.c.bw
	bw.Write(statusLine(w.status))
	exclude := excludeNone
	if te != "" || trailers {
		exclude = map[string]bool{"Transfer-Encoding": true}
		for k := range h {
			if strings.HasPrefix(k, http.TrailerPrefix) {
				exclude[k] = true
			}
		}
	}
	_ = h.WriteSubset(bw, exclude)
	for _, kv := range extra[:ne] {
		bw.WriteString(kv[0])
		bw.WriteString(": ")
		bw.WriteString(kv[1])
		bw.WriteString("\r\n")
	}
	if w.closeAfter && !httpHasToken(h["Connection"], "close") {
		bw.WriteString("Connection: close\r\n")
	}
	_, w.err = bw.WriteString("\r\n")
	if !w.head && w.bodyOK {
		w.body(pre)
	}
	w.c.pre = pre[:0]
}

var excludeNone = map[string]bool{}

// finish ends the response once the handler returned: the head if not
// yet written, the last chunk and trailers, one flush.
func (w *response) finish() {
	if !w.committed {
		w.commit(true, nil)
	}
	if w.chunked && w.err == nil {
		bw := w.c.bw
		bw.WriteString("0\r\n")
		for k, vv := range w.header {
			name, isTrailer := strings.CutPrefix(k, http.TrailerPrefix)
			if !isTrailer {
				continue
			}
			for _, v := range vv {
				bw.WriteString(name)
				bw.WriteString(": ")
				bw.WriteString(strings.NewReplacer("\r", " ", "\n", " ").Replace(v))
				bw.WriteString("\r\n")
			}
		}
		for _, k := range w.sent["Trailer"] {
			for _, k := range strings.Split(k, ",") {
				k = http.CanonicalHeaderKey(strings.TrimSpace(k))
				for _, v := range w.header[k] {
					bw.WriteString(k)
					bw.WriteString(": ")
					bw.WriteString(strings.NewReplacer("\r", " ", "\n", " ").Replace(v))
					bw.WriteString("\r\n")
				}
			}
		}
		bw.WriteString("\r\n")
	}
	if w.err == nil {
		w.err = w.c.bw.Flush()
	}
	if w.declared >= 0 && w.written != w.declared && !w.head && w.bodyOK {
		// The handler wrote less than it declared: the client waits for
		// the rest; closing tells it the response is broken.
		w.closeAfter = true
	}
}

func bodyAllowed(status int) bool {
	return !(status >= 100 && status <= 199 || status == 204 || status == 304)
}

func httpHasToken(vv []string, token string) bool {
	for _, v := range vv {
		if hasToken(v, token) {
			return true
		}
	}
	return false
}

// statusLine is "HTTP/1.1 <code> <text>\r\n", built once per code.
func statusLine(code int) []byte {
	if code >= 100 && code < 600 {
		if b := statusLines[code].Load(); b != nil {
			return *b
		}
	}
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	b := []byte("HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n")
	if code >= 100 && code < 600 {
		statusLines[code].Store(&b)
	}
	return b
}

var statusLines [600]atomic.Pointer[[]byte]

// date is the Date field's value, formatted once a second.
func date() string {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.s
	}
	d := &cachedDate{sec: now.Unix(), s: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.s
}

type cachedDate struct {
	sec int64
	s   string
}

var dateCache atomic.Pointer[cachedDate]
