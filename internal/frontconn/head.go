package frontconn

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"

	"golang.org/x/net/http/httpguts"
)

// headEnd is the length of the request head at the start of b (through
// its empty line), or 0 if b does not hold all of it. Bare LF line ends
// count, so such a head is found (and handed over: parse wants CRLF).
func headEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		}
	}
}

// parse reads a request head the loop serves itself: ok is false for
// anything else (the connection is then handed over, and net/http answers
// it, 400s included). It accepts a strict subset of what net/http does:
// CRLF line ends, a known method, an origin-form target, HTTP/1.1, valid
// field names and values with no line folding, exactly one valid Host, at
// most one Content-Length of digits, no Transfer-Encoding, Expect or
// Upgrade, no Connection naming upgrade.
func (c *conn) parse(head []byte) (req http.Request, body *bodyReader, ok bool) {
	// Every line ends in CRLF, the last is empty: no bare LF anywhere
	// (FuzzParse found a line ending in one skipped).
	if !bytes.HasSuffix(head, crlfcrlf) || bytes.Count(head, lf) != bytes.Count(head, crlf) {
		return http.Request{}, nil, false
	}
	line, rest, found := bytes.Cut(head, crlf)
	if !found {
		return http.Request{}, nil, false
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return http.Request{}, nil, false
	}
	method := knownMethod(line[:sp])
	if method == "" {
		return http.Request{}, nil, false
	}
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 || line[0] != '/' || string(line[sp+1:]) != "HTTP/1.1" {
		return http.Request{}, nil, false
	}
	for _, b := range line[:sp] {
		if b <= ' ' || b >= 0x7f {
			return http.Request{}, nil, false
		}
	}
	// The head as one string: the target and the values are slices of
	// it, one allocation rather than one per field.
	hs := string(head)
	str := func(b []byte) string { // b is a slice of head
		off := cap(head) - cap(b)
		return hs[off : off+len(b)]
	}
	target := str(line[:sp])
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return http.Request{}, nil, false
	}

	// Fields: count them first, for one backing array of values.
	n := bytes.Count(rest, crlf) - 1
	if n < 0 {
		return http.Request{}, nil, false
	}
	// Room for the fields a gateway adds before forwarding (the request
	// id, five forwarded fields, two trace fields): growing the map
	// afterwards costs more allocations than sizing it now.
	h := make(http.Header, n+addedFields)
	vals := make([]string, n)
	var host string
	hosts, cls := 0, 0
	var cl int64
	closeAfter := false
	for i := 0; i < n; i++ {
		line, rest, _ = bytes.Cut(rest, crlf)
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return http.Request{}, nil, false // includes obsolete line folding
		}
		name, v := line[:colon], trim(line[colon+1:])
		if !validName(name) || !validValue(v) {
			return http.Request{}, nil, false
		}
		key := c.canonical(name)
		val := str(v)
		switch key {
		case "Host":
			hosts++
			host = val
			continue // as net/http: the request's Host, not a field
		case "Content-Length":
			cls++
			if cl, err = strconv.ParseInt(val, 10, 64); err != nil || cl < 0 || val[0] == '+' {
				return http.Request{}, nil, false
			}
		case "Transfer-Encoding", "Expect", "Upgrade":
			return http.Request{}, nil, false
		case "Connection":
			if hasToken(val, "upgrade") {
				return http.Request{}, nil, false
			}
			if hasToken(val, "close") {
				closeAfter = true
			}
		}
		vals[i] = val
		if old, dup := h[key]; dup {
			h[key] = append(old, val)
		} else {
			h[key] = vals[i : i+1 : i+1]
		}
	}
	if hosts != 1 || cls > 1 || !httpguts.ValidHostHeader(host) {
		return http.Request{}, nil, false
	}
	// As net/http's server (RFC 7234 §5.4): Pragma: no-cache stands for
	// Cache-Control: no-cache when that is absent.
	if hp, ok := h["Pragma"]; ok && len(hp) > 0 && hp[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
	req = http.Request{
		Method: method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Host: host, RemoteAddr: c.remote, RequestURI: target, Close: closeAfter,
		Body: http.NoBody,
	}
	if cl > 0 {
		body = &bodyReader{c: c, left: cl}
		req.Body, req.ContentLength = body, cl
	}
	return req, body, true
}

// addedFields is how many fields internal/gateway adds to a request.
const addedFields = 8

var (
	crlf     = []byte("\r\n")
	crlfcrlf = []byte("\r\n\r\n")
	lf       = []byte("\n")
)

func knownMethod(b []byte) string {
	switch string(b) {
	case "GET":
		return "GET"
	case "HEAD":
		return "HEAD"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "PATCH":
		return "PATCH"
	case "OPTIONS":
		return "OPTIONS"
	}
	return ""
}

// trim drops a field value's leading and trailing blanks (SP, HTAB).
func trim(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func validName(b []byte) bool {
	for _, c := range b {
		if !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}

// validValue: no control characters but HTAB (CR and LF cannot be here).
func validValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// canonical is name's canonical key (textproto's), without allocating for
// the common fields.
func (c *conn) canonical(name []byte) string {
	c.scratch = append(c.scratch[:0], name...)
	upper := true
	for i, b := range c.scratch {
		if upper && 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		} else if !upper && 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		c.scratch[i] = b
		upper = b == '-'
	}
	if k, ok := common[string(c.scratch)]; ok {
		return k
	}
	return string(c.scratch)
}

var common = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
		"Connection", "Content-Length", "Content-Type", "Cookie", "Expect", "Forwarded", "Host",
		"If-Match", "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since", "Origin",
		"Pragma", "Range", "Referer", "Te", "Traceparent", "Tracestate", "Transfer-Encoding", "Upgrade",
		"User-Agent", "X-Amzn-Trace-Id", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Port",
		"X-Forwarded-Proto", "X-Request-Id", "Keep-Alive", "Idempotency-Key", "X-Idempotency-Key",
	} {
		if k != textproto.CanonicalMIMEHeaderKey(k) {
			panic("frontconn: not canonical: " + k)
		}
		m[k] = k
	}
	return m
}()

// hasToken says whether a comma-separated field value lists token (ASCII
// case-insensitive).
func hasToken(v, token string) bool {
	return httpguts.HeaderValuesContainsToken([]string{v}, token)
}
