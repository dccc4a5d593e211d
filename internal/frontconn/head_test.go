package frontconn

import (
	"bufio"
	"bytes"
	"net/http"
	"reflect"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// FuzzParse: whatever head the loop's parser accepts, net/http's server
// accepts too and reads the same request (method, target, Host, fields,
// length, Connection: close). The parser may refuse more (the connection
// then goes to net/http), never less.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /f/a?b=c HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n",
		"POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n",
		"GET /f HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
		"GET /f HTTP/1.1\r\nHost: x\r\nPragma: no-cache\r\n\r\n",
		"GET /f HTTP/1.1\r\nHost: x\r\nCookie: a=b\r\n  c\r\n\r\n",
		"GET /f HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /f HTTP/1.1\nHost: x\n\n",
		"DELETE /f HTTP/1.1\r\nHost: [::1]:80\r\nX:\t v \t\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	c := &conn{remote: "127.0.0.1:1"}
	f.Fuzz(func(t *testing.T, b []byte) {
		end := headEnd(b)
		if end == 0 {
			return
		}
		head := b[:end]
		got, _, ok := c.parse(head)
		if !ok {
			return
		}
		want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("parse accepted %q; net/http: %v", head, err)
		}
		// The server's own checks (net/http/server.go readRequest;
		// ReadRequest already refused two Host fields, and took it out).
		if !httpguts.ValidHostHeader(want.Host) {
			t.Fatalf("parse accepted %q; net/http's server refuses its Host", head)
		}
		for k, vv := range want.Header {
			if !httpguts.ValidHeaderFieldName(k) {
				t.Fatalf("parse accepted %q; invalid name %q", head, k)
			}
			for _, v := range vv {
				if !httpguts.ValidHeaderFieldValue(v) {
					t.Fatalf("parse accepted %q; invalid value %q", head, v)
				}
			}
		}
		if want.Method != got.Method || want.RequestURI != got.RequestURI || want.Host != got.Host ||
			want.URL.String() != got.URL.String() || want.ContentLength != got.ContentLength || want.Close != got.Close ||
			want.ProtoMajor != 1 || want.ProtoMinor != 1 || !reflect.DeepEqual(want.Header, got.Header) {
			t.Fatalf("%q:\nnet/http %s %s %s %d close=%v %v\nparse    %s %s %s %d close=%v %v", head,
				want.Method, want.RequestURI, want.Host, want.ContentLength, want.Close, want.Header,
				got.Method, got.RequestURI, got.Host, got.ContentLength, got.Close, got.Header)
		}
	})
}
