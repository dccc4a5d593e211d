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
	case "fork":
		forkBomb()
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
		// A panic off the handler's goroutine kills the process, as an
		// uncaught exception kills a Node app.
		done := make(chan struct{})
		go func() { defer close(done); panic("chaos: app panicked on purpose") }()
		<-done
	})
	mux.HandleFunc("/pid", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getpid())
	})
	mux.HandleFunc("/membomb", func(w http.ResponseWriter, r *http.Request) {
		var hog [][]byte
		for {
			b := make([]byte, 16<<20)
			for i := range b {
				b[i] = 1
			}
			hog = append(hog, b)
		}
	})
	mux.HandleFunc("/forkbomb", func(w http.ResponseWriter, r *http.Request) {
		forkBomb()
	})
	_ = http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), mux)
}

// forkBomb starts copies of itself that start copies of themselves,
// forever; the instance's pids limit is what stops it.
func forkBomb() {
	for {
		cmd := exec.Command("/proc/self/exe")
		cmd.Env = []string{"CHAOS_APP=fork"}
		if err := cmd.Start(); err != nil {
			time.Sleep(time.Millisecond)
		}
	}
}

var _ = json.Marshal
