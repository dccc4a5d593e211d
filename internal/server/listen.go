package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/frontconn"
	"github.com/stokehq/stoke/internal/gateway"
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

// newGatewayServer serves the gateway listener: the connection loop
// (internal/frontconn) serves a request routed to a function itself, and
// hands every other request, and any connection with one, to an
// http.Server with Stoke's limits. Both run h; arr counts the connections
// whose first request has not reached it yet (quiesce).
func newGatewayServer(h http.Handler, gw *gateway.Gateway, arr *arrivals, log *slog.Logger) *frontconn.Server {
	fb := newHTTPServer(h)
	arr.serve(fb)
	return &frontconn.Server{
		Handler:       h,
		Fast:          func(r *http.Request) bool { return !invokePath(r.URL.Path) && gw.Routed(r.URL.Path) },
		Fallback:      fb,
		HeaderTimeout: readHeaderTimeout,
		IdleTimeout:   idleTimeout,
		Accepted:      arr.add,
		Settled:       arr.done,
		Logger:        log,
	}
}

// listen listens on addr, with TLS when t is set. what names the setting
// for messages. It returns the TCP listener under the TLS one too
// (quiesce).
func listen(addr string, t config.TLS, what string) (net.Listener, *net.TCPListener, error) {
	var tc *tls.Config
	if t.On() {
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: loading the certificate %s and key %s: %w", what, t.Cert, t.Key, err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	tl, err := listenTCP(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: listening on %s: %w", what, addr, err)
	}
	var l net.Listener = tl
	if tc != nil {
		l = tls.NewListener(l, tc)
	}
	return l, tl, nil
}

// listenTCP listens on a plain TCP socket: Go listens with MPTCP by
// default, and an MPTCP socket takes no socket filter, which quiesce
// attaches. MPTCP clients fall back to TCP.
func listenTCP(addr string) (*net.TCPListener, error) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	l, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	return l.(*net.TCPListener), nil
}

func scheme(t config.TLS) string {
	if t.On() {
		return "https://"
	}
	return "http://"
}
