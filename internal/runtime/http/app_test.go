package httprt

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// appEnv names the test app the test binary should run as instead of tests.
const appEnv = "STOKE_HTTPRT_TEST_APP"

func TestMain(m *testing.M) {
	sandbox.MaybeRunStub()
	if app := os.Getenv(appEnv); app != "" {
		runApp(app)
		os.Exit(0)
	}
	sandboxtest.InOwnMountNamespace()
	os.Exit(m.Run())
}

// runApp is a test app: a small HTTP server on $PORT whose behaviour at
// start is chosen by name.
func runApp(name string) {
	switch name {
	case "exit2":
		fmt.Fprintln(os.Stderr, "boom: config file missing")
		os.Exit(2)
	case "never":
		fmt.Println("initialising forever")
		select {}
	case "slow":
		time.Sleep(200 * time.Millisecond)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	// For TestReadinessLag: when the app could first have served.
	fmt.Println("listening", time.Now().UnixNano())
	var notReady atomic.Int64 // readiness probes answered 503
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		// ready503 answers its first three health checks 503, however
		// soon or late they come.
		for n := notReady.Load(); name == "ready503" && n < 3; n = notReady.Load() {
			if notReady.CompareAndSwap(n, n+1) {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/notready", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strconv.FormatInt(notReady.Load(), 10))
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(os.Environ())
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.Header().Add("X-Multi", "x")
		w.Header().Add("X-Multi", "y")
		json.NewEncoder(w).Encode(map[string]any{
			"method": r.Method, "host": r.Host, "uri": r.RequestURI,
			"header": r.Header, "body": string(body),
		})
	})
	mux.HandleFunc("/copy", func(w http.ResponseWriter, r *http.Request) {
		// Echo as it reads; without full duplex net/http would drop
		// unread body bytes once the response starts.
		http.NewResponseController(w).EnableFullDuplex()
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(pattern(n))
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select { // the test releases the last chunk once it has the first
		case <-release:
		case <-time.After(10 * time.Second):
		}
		io.WriteString(w, "last\n")
	})
	mux.HandleFunc("/release", func(w http.ResponseWriter, r *http.Request) {
		close(release)
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("exiting on request")
		os.Exit(3)
	})
	mux.HandleFunc("/alloc", func(w http.ResponseWriter, r *http.Request) {
		var hold [][]byte
		for i := 0; ; i++ { // until the kernel kills us
			b := make([]byte, 8<<20)
			for j := 0; j < len(b); j += 4096 { // touch every page
				b[j] = 1
			}
			hold = append(hold, b)
			if i > 1000 {
				break
			}
		}
		fmt.Fprintln(w, len(hold))
	})
	// Connections the tests' requests came on (marked with testMark), for
	// the reuse tests: a connection is counted at its first marked request.
	// Others may reach this port too — a process left from another test
	// that had the port before this app, dialling it again — and they are
	// not the forwarder's (TestProbeConnectionIsTheOnlyOne once counted 3).
	var conns atomic.Int64
	mux.HandleFunc("/conns", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strconv.FormatInt(conns.Load(), 10))
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		w.WriteHeader(code)
		io.WriteString(w, "body") // dropped by net/http for 204 and 304
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	mux.HandleFunc("/early", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		h.Del("Link")
		io.WriteString(w, "after hints")
	})
	// /hangup and /eof answer and close without saying so, as a broken or
	// HTTP/1.0-style server would.
	raw := func(w http.ResponseWriter, resp string) {
		c, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		bw.WriteString(resp)
		bw.Flush()
		c.Close()
	}
	mux.HandleFunc("/hangup", func(w http.ResponseWriter, r *http.Request) {
		raw(w, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhangup")
	})
	mux.HandleFunc("/eof", func(w http.ResponseWriter, r *http.Request) {
		raw(w, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
	})
	mux.HandleFunc("/upgrade", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
			return
		}
		c, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer c.Close()
		bw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		bw.Flush()
		io.Copy(c, bw)
	})
	type seenKey struct{}
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen, ok := r.Context().Value(seenKey{}).(*atomic.Bool); ok && r.Header.Get(testMark) != "" && !seen.Swap(true) {
			conns.Add(1)
		}
		mux.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: counted, ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, seenKey{}, new(atomic.Bool))
	}}
	if name == "idle" {
		srv.IdleTimeout = 300 * time.Millisecond
	}
	srv.Serve(l)
}

// pattern returns n bytes that differ by position, so reordering shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}
