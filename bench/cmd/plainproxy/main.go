// Command plainproxy is the baseline for Stoke's warm path: the plainest
// reverse proxy one would write with the standard library, with a keep-alive
// pool big enough for wrk -c64 and, unless -buffers, no buffer pool.
//
//	plainproxy -listen 127.0.0.1:9000 -target http://127.0.0.1:9001
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
)

// bufferPool is httputil.BufferPool over a sync.Pool of 32 KB buffers (the
// size ReverseProxy copies with), for -buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(s []byte) { b.p.Put(&s) }

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	target := flag.String("target", "", "upstream base URL, e.g. http://127.0.0.1:9001")
	buffers := flag.Bool("buffers", false, "tuned: copy bodies through a buffer pool")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		log.Fatalf("plainproxy: -target %q: need an absolute URL", *target)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	t.MaxIdleConns = 256
	rp.Transport = t
	if *buffers {
		rp.BufferPool = &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
	}
	log.Fatal(http.ListenAndServe(*listen, rp))
}
