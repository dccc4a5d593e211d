package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// runApp runs this test binary as one of the suite's functions.
func runApp(app string) {
	switch app {
	case "lambda":
		lambda.Start(lambdaHandler)
	case "http":
		serveHTTP()
	case "crash":
		// Exits at once, every time: a crash loop.
		fmt.Println("crash: cannot start (on purpose)")
		os.Exit(3)
	default:
		fmt.Fprintln(os.Stderr, "unknown CHAOS_APP", app)
		os.Exit(2)
	}
}

// op is what a lambda invocation asks the function to do.
type op struct {
	Op    string `json:"op"`
	N     int    `json:"n,omitempty"`
	Value string `json:"value,omitempty"`
}

func lambdaHandler(ctx context.Context, in op) (op, error) {
	switch in.Op {
	case "panic":
		panic("chaos: handler panicked on purpose")
	case "error":
		return op{}, fmt.Errorf("chaos: handler failed on purpose")
	case "sleep":
		time.Sleep(time.Duration(in.N) * time.Millisecond)
	case "exit":
		os.Exit(1)
	}
	return in, nil
}

// serveHTTP is an HTTP app on $PORT with a path per fault.
func serveHTTP() {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "echo %s pid %d", r.URL.RawQuery, os.Getpid())
	})
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintf(w, "slept %d", ms)
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {} // never answers
	})
	mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) {
		// A panic off the handler's goroutine kills the process before it
		// answers, as an uncaught exception kills a Node app.
		go func() { panic("chaos: app panicked on purpose") }()
		select {}
	})
	mux.HandleFunc("/answer-then-exit", func(w http.ResponseWriter, r *http.Request) {
		// Answers whole, then dies: the next request must not go down with it.
		fmt.Fprint(w, "answered")
		http.NewResponseController(w).Flush()
		os.Exit(1)
	})
	// /events is where the Invoke API sends an http function its events:
	// each delivery is appended to $OUT/delivered.log (a line is one
	// O_APPEND write, so lines never interleave), then it takes a while.
	mux.HandleFunc("POST /events", func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ N int }
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f, err := os.OpenFile(os.Getenv("OUT")+"/delivered.log", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(f, "%d %s\n", ev.N, r.Header.Get("X-Request-Id"))
		f.Close()
		time.Sleep(30 * time.Millisecond)
		fmt.Fprint(w, `{"ok":true}`)
	})
	mux.HandleFunc("/pid", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getpid())
	})
	mux.HandleFunc("/membomb", func(w http.ResponseWriter, r *http.Request) {
		var hog [][]byte
		for {
			b := make([]byte, 16<<20)
			for i := 0; i < len(b); i += 4096 { // a byte per page makes it resident
				b[i] = 1
			}
			hog = append(hog, b)
		}
	})
	mux.HandleFunc("/forkbomb", func(w http.ResponseWriter, r *http.Request) {
		// The shell's classic: every process starts two more, at once;
		// then the request hangs until the function's timeout stops the
		// instance (its cgroup, bomb and all).
		_ = exec.Command("/bin/sh", "-c", "b() { b | b & }; b; sleep 60").Run()
		select {}
	})
	_ = http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), mux)
}
