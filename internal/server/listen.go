package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/stokehq/stoke/internal/config"
)

// Limits of both listeners: a client that is slow to send its headers, or
// sends too many, or keeps an idle connection, is not served.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	// maxHeaderBytes: beyond it a request gets 431 (net/http answers it).
	maxHeaderBytes = 64 << 10
)

// newHTTPServer is a listener's server with Stoke's limits.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes}
}

// listen listens on addr, with TLS when t is set. what names the setting
// for messages.
func listen(addr string, t config.TLS, what string) (net.Listener, error) {
	var tc *tls.Config
	if t.On() {
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("%s: loading the certificate %s and key %s: %w", what, t.Cert, t.Key, err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listening on %s: %w", what, addr, err)
	}
	if tc != nil {
		l = tls.NewListener(l, tc)
	}
	return l, nil
}

func scheme(t config.TLS) string {
	if t.On() {
		return "https://"
	}
	return "http://"
}
