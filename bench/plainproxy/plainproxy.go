// Package plainproxy is the baseline Stoke's warm path is measured
// against: httputil.ReverseProxy tuned for the benchmarks' load, the way
// one would tune it (a BufferPool; a Transport keeping an idle connection
// per client, without compression, HTTP/2 attempts or proxy lookups). Both
// bench/cmd/plainproxy and internal/runtime/http's Go benchmarks use it, so
// the lean forwarder is always compared with the same proxy.
package plainproxy

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// MaxIdle is the idle connections kept to the app: more than the
// benchmarks' 64 clients.
const MaxIdle = 256

// New returns the tuned proxy to target (an absolute http URL) and its
// Transport, for closing idle connections.
func New(target *url.URL) (*httputil.ReverseProxy, *http.Transport) {
	t := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        MaxIdle,
		MaxIdleConnsPerHost: MaxIdle,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     bufSize,
		ReadBufferSize:      bufSize,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:  t,
		BufferPool: pool{},
	}
	return rp, t
}

const bufSize = 32 << 10

var bufs = sync.Pool{New: func() any { return new([bufSize]byte) }}

// pool is ReverseProxy's BufferPool over arrays, so Get and Put do not
// allocate.
type pool struct{}

func (pool) Get() []byte  { return bufs.Get().(*[bufSize]byte)[:] }
func (pool) Put(b []byte) { bufs.Put((*[bufSize]byte)(b)) }
