// Command plainproxy is the baseline for Stoke's warm path:
// httputil.ReverseProxy tuned for the load (bench/plainproxy: a BufferPool,
// a Transport keeping 256 idle connections), in front of the same app.
//
//	plainproxy -listen 127.0.0.1:9000 -target http://127.0.0.1:9001
package main

import (
	"flag"
	"log"
	"net/http"
	"net/url"

	"github.com/stokehq/stoke/bench/plainproxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	target := flag.String("target", "", "upstream base URL, e.g. http://127.0.0.1:9001")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		log.Fatalf("plainproxy: -target %q: need an absolute URL", *target)
	}
	rp, _ := plainproxy.New(u)
	log.Fatal(http.ListenAndServe(*listen, rp))
}
