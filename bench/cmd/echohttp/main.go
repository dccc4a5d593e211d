// Command echohttp is examples/lambda-echo's handler as a plain net/http app
// (a Stoke `http` function, serving on $PORT): it answers every request with
// the same JSON document lambda-echo builds from an API Gateway v2 event —
// method, path, query (repeated keys joined with commas), headers (lower-case
// names, repeated values joined with commas), cookies, body and request id
// (Stoke's X-Request-Id) — with Content-Type: application/json. stokebench
// lambda-warm uses it as the baseline for the Lambda paths.
package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
)

// echo is lambda-echo's response document, field for field.
type echo struct {
	Method    string            `json:"method"`
	Path      string            `json:"path"`
	Query     map[string]string `json:"query"`
	Headers   map[string]string `json:"headers"`
	Cookies   []string          `json:"cookies"`
	Body      string            `json:"body"`
	RequestID string            `json:"requestId"`
}

func handler(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var query map[string]string
	if q := r.URL.Query(); len(q) > 0 {
		query = make(map[string]string, len(q))
		for k, v := range q {
			query[k] = strings.Join(v, ",")
		}
	}
	headers := make(map[string]string, len(r.Header)+1)
	var cookies []string
	for k, v := range r.Header {
		if k == "Cookie" {
			for _, c := range v {
				for _, p := range strings.Split(c, ";") {
					if p = strings.TrimSpace(p); p != "" {
						cookies = append(cookies, p)
					}
				}
			}
			continue
		}
		headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	headers["host"] = r.Host
	out, err := json.Marshal(echo{
		Method:    r.Method,
		Path:      r.URL.EscapedPath(),
		Query:     query,
		Headers:   headers,
		Cookies:   cookies,
		Body:      string(body),
		RequestID: r.Header.Get("X-Request-Id"),
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, http.HandlerFunc(handler)))
}
