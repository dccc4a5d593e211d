// Command plainproxy is the baseline for Stoke's warm path: the plainest
// reverse proxy one would write with the standard library, with a keep-alive
// pool big enough for wrk -c64 and no buffer pool.
//
//	plainproxy -listen 127.0.0.1:9000 -target http://127.0.0.1:9001
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	target := flag.String("target", "", "upstream base URL, e.g. http://127.0.0.1:9001")
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
	log.Fatal(http.ListenAndServe(*listen, rp))
}
