// Command hello is the smallest Stoke function: a Go net/http app serving on
// $PORT. It also has endpoints that show Stoke's limits at work:
// /hello/sleep?ms=N (function timeout) and /hello/alloc?mb=N (memory limit);
// /hello?max-age=N answers with Cache-Control: max-age=N (response cache).
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	greeting := os.Getenv("GREETING")
	if greeting == "" {
		greeting = "hello"
	}
	fn := os.Getenv("AWS_LAMBDA_FUNCTION_NAME")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// ?max-age=N lets the response be cached for N seconds (Stoke's
		// response cache, or any other).
		if n, err := strconv.Atoi(r.URL.Query().Get("max-age")); err == nil && n >= 0 {
			w.Header().Set("Cache-Control", "max-age="+strconv.Itoa(n))
		}
		fmt.Fprintf(w, "%s from %s (version %s, %s MB): %s %s\n", greeting, fn,
			os.Getenv("AWS_LAMBDA_FUNCTION_VERSION"), os.Getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), r.Method, r.URL.Path)
	})
	mux.HandleFunc("/hello/sleep", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintf(w, "slept %d ms\n", ms)
	})
	var hog [][]byte
	mux.HandleFunc("/hello/alloc", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		log.Printf("allocating %d MB", mb)
		for i := 0; i < mb; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			hog = append(hog, b)
		}
		fmt.Fprintf(w, "allocated %d MB\n", mb)
	})
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, mux))
}
