package httpwire

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestValidateAgreesWithTransport sends each request through net/http's
// Transport to a real loopback server: Validate must refuse exactly what
// the Transport refuses to write (Host aside, which the Transport blanks
// and Validate refuses).
func TestValidateAgreesWithTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	base, _ := url.Parse(srv.URL)
	cases := []struct {
		name  string
		edit  func(r *http.Request)
		valid bool
	}{
		{"plain", func(r *http.Request) {}, true},
		{"extension method", func(r *http.Request) { r.Method = "PROPFIND" }, true},
		{"CRLF in the method", func(r *http.Request) { r.Method = "GET / HTTP/1.1\r\nX: y\r\n\r\nGET" }, false},
		{"space in the method", func(r *http.Request) { r.Method = "GE T" }, false},
		{"CRLF in the query", func(r *http.Request) { r.URL.RawQuery = "a=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /smuggled" }, false},
		{"NUL in the query", func(r *http.Request) { r.URL.RawQuery = "a=\x00" }, false},
		{"DEL in the query", func(r *http.Request) { r.URL.RawQuery = "a=\x7f" }, false},
		{"CRLF in the path is escaped", func(r *http.Request) { r.URL.Path = "/a\r\nb" }, true},
		{"raw path with CRLF is escaped from Path", func(r *http.Request) { r.URL.Path, r.URL.RawPath = "/a\r\nb", "/a\r\nb" }, true},
		{"tab in a value", func(r *http.Request) { r.Header.Set("X-A", "a\tb") }, true},
		{"UTF-8 in a value", func(r *http.Request) { r.Header.Set("X-A", "café") }, true},
		{"CRLF in a value", func(r *http.Request) { r.Header["X-A"] = []string{"a\r\nX-Injected: 1"} }, false},
		{"LF in a value", func(r *http.Request) { r.Header["X-A"] = []string{"a\nb"} }, false},
		{"NUL in a value", func(r *http.Request) { r.Header["X-A"] = []string{"a\x00b"} }, false},
		{"CRLF in a name", func(r *http.Request) { r.Header["X-A\r\nX-B"] = []string{"1"} }, false},
		{"colon in a name", func(r *http.Request) { r.Header["X-A:"] = []string{"1"} }, false},
		{"space in a name", func(r *http.Request) { r.Header["X A"] = []string{"1"} }, false},
		{"empty name", func(r *http.Request) { r.Header[""] = []string{"1"} }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", srv.URL+"/p", nil)
			tc.edit(r)
			err := Validate(r)
			var re *RequestError
			if err != nil && !errors.As(err, &re) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if (err == nil) != tc.valid {
				t.Errorf("Validate: %v, want valid %v", err, tc.valid)
			}
			r.URL.Scheme, r.URL.Host = base.Scheme, base.Host
			res, terr := tr.RoundTrip(r)
			if terr == nil {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
			if (terr == nil) != tc.valid {
				t.Errorf("Transport: %v, but Validate says valid %v", terr, tc.valid)
			}
		})
	}
}

func TestValidateHost(t *testing.T) {
	for host, valid := range map[string]bool{
		"example.com": true, "example.com:8080": true, "[::1]:80": true, "": true,
		"example.com\r\nX: y": false, "a b": false, "a\x00": false,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = host
		if err := Validate(r); (err == nil) != valid {
			t.Errorf("Host %q: %v, want valid %v", host, err, valid)
		}
	}
}

// The error never quotes a header's value: it may be a secret.
func TestValidateKeepsValuesOutOfErrors(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header["Authorization"] = []string{"Bearer s3cret\r\n"}
	err := Validate(r)
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "Authorization") {
		t.Errorf("error %v", err)
	}
}
