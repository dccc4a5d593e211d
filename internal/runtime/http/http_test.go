package httprt

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

func checkNoLeaks(t testing.TB) { sandboxtest.CheckNoLeaks(t) }

var managers sync.Map // testing.TB → *sandbox.Manager

// newStarter returns the test's own sandbox manager, closed when it ends.
func newStarter(t testing.TB) sandbox.Starter {
	if m, ok := managers.Load(t); ok {
		return m.(*sandbox.Manager)
	}
	m, err := sandbox.New(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	managers.Store(t, m)
	t.Cleanup(func() {
		managers.Delete(t)
		if err := m.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return m
}

// function returns a function running the test binary as app name.
func function(t testing.TB, app string) *config.Function {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &config.Function{
		Name:        "t-" + app,
		Runtime:     "http",
		Command:     []string{exe},
		Cwd:         t.TempDir(),
		Env:         map[string]string{appEnv: app},
		Memory:      1769, // a whole CPU, so start-up is quick on a small VM
		InitTimeout: 10 * time.Second,
		Concurrency: 1,
		Readiness:   config.Readiness{Protocol: "http", Path: "/", StatusMin: 100, StatusMax: 499},
	}
}

func newRuntime(t testing.TB, f *config.Function) *Runtime {
	return New(Options{
		Function: f,
		Sandbox:  newStarter(t),
		Logger:   slog.New(slog.DiscardHandler),
	})
}

// start starts an instance that is stopped when the test ends.
func start(t testing.TB, f *config.Function) *Instance {
	t.Helper()
	inst, err := newRuntime(t, f).Start(context.Background(), "i-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { inst.Stop(context.Background()) })
	return inst.(*Instance)
}

// front serves inst on a real loopback server the way the gateway would:
// errors become a 502 naming the error type.
func front(t testing.TB, inst *Instance) *httptest.Server {
	srv, _ := frontErrs(t, inst)
	return srv
}

// frontErrs is front that also reports each error Invoke returned.
func frontErrs(t testing.TB, inst *Instance) (*httptest.Server, chan error) {
	errs := make(chan error, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := inst.Invoke(w, marked(r))
		if err == nil {
			return
		}
		errs <- err
		if errors.Is(err, http.ErrAbortHandler) {
			panic(http.ErrAbortHandler)
		}
		e := runtime.AsError(err)
		w.Header().Set("X-Error-Type", e.Type)
		http.Error(w, e.Message, e.Status)
	}))
	t.Cleanup(srv.Close)
	return srv, errs
}

func get(t testing.TB, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func TestReadyMeansServing(t *testing.T) {
	checkNoLeaks(t)
	for _, app := range []string{"hello", "slow"} {
		n := 20
		if app == "slow" {
			n = 3
		}
		for i := range n {
			f := function(t, app)
			rt := newRuntime(t, f)
			began := time.Now()
			inst, err := rt.Start(context.Background(), "i-"+app+strconv.Itoa(i))
			if err != nil {
				t.Fatalf("%s #%d: %v", app, i, err)
			}
			took := time.Since(began)
			// Straight at the app, not through the kept-alive probe connection.
			res, body := get(t, "http://"+inst.(*Instance).addr+"/")
			if res.StatusCode != 200 || body != "hello" {
				t.Fatalf("%s #%d: first request got %d %q", app, i, res.StatusCode, body)
			}
			if d := inst.InitDuration(); d <= 0 || d > took {
				t.Errorf("%s #%d: InitDuration %v, Start took %v", app, i, d, took)
			}
			if app == "slow" && inst.InitDuration() < 200*time.Millisecond {
				t.Errorf("slow app reported ready after %v, before it listened", inst.InitDuration())
			}
			if err := inst.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				t.Logf("%s: init %v, Start took %v", app, inst.InitDuration(), took)
			}
		}
	}
}

func TestFirstInvokeReusesProbeConnection(t *testing.T) {
	checkNoLeaks(t)
	inst := start(t, function(t, "hello"))
	srv := front(t, inst)
	res, body := get(t, srv.URL+"/")
	if res.StatusCode != 200 || body != "hello" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
}

func TestExitBeforeReady(t *testing.T) {
	checkNoLeaks(t)
	_, err := newRuntime(t, function(t, "exit2")).Start(context.Background(), "i-exit2")
	var e *runtime.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want *runtime.Error", err)
	}
	if e.Type != "Runtime.ExitError" || !strings.Contains(e.Message, "exit status 2") ||
		!strings.Contains(e.Message, "boom: config file missing") {
		t.Fatalf("got %s %q", e.Type, e.Message)
	}
}

func TestInitTimeout(t *testing.T) {
	checkNoLeaks(t)
	f := function(t, "never")
	f.InitTimeout = 300 * time.Millisecond
	began := time.Now()
	_, err := newRuntime(t, f).Start(context.Background(), "i-never")
	took := time.Since(began)
	var e *runtime.Error
	if !errors.As(err, &e) || e.Type != "Runtime.InitError" ||
		!strings.Contains(e.Message, "init timed out after 300ms") || !strings.Contains(e.Message, "GET / ") {
		t.Fatalf("got %v", err)
	}
	if took < 300*time.Millisecond || took > 2*time.Second {
		t.Fatalf("Start took %v with a 300ms init timeout", took)
	}
}

func TestStartCancelled(t *testing.T) {
	checkNoLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := newRuntime(t, function(t, "never")).Start(ctx, "i-cancel")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's error", err)
	}
}

func TestReadinessStatusRange(t *testing.T) {
	checkNoLeaks(t)
	f := function(t, "ready503")
	f.Readiness = config.Readiness{Protocol: "http", Path: "/health", StatusMin: 200, StatusMax: 299}
	inst := start(t, f)
	// Start returned only once a probe got a status in range: after the
	// app's three 503s.
	if _, n := get(t, "http://"+inst.addr+"/notready"); n != "3" {
		t.Fatalf("app answered %s readiness probes 503 before Start returned, want 3", n)
	}
}

func TestTCPReadiness(t *testing.T) {
	checkNoLeaks(t)
	f := function(t, "slow")
	f.Readiness.Protocol = "tcp"
	inst := start(t, f)
	if inst.InitDuration() < 200*time.Millisecond {
		t.Fatalf("ready after %v, before the app listened", inst.InitDuration())
	}
	res, body := get(t, front(t, inst).URL+"/")
	if res.StatusCode != 200 || body != "hello" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
}

func TestHeadersHostPassedOn(t *testing.T) {
	checkNoLeaks(t)
	inst := start(t, function(t, "hello"))
	srv := front(t, inst)
	req, _ := http.NewRequest("POST", srv.URL+"/echo?q=1&q=2", strings.NewReader("payload"))
	req.Host = "api.example.com"
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Request-Id", "req-1")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "must not pass")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got struct {
		Method, Host, URI, Body string
		Header                  http.Header
	}
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Method != "POST" || got.Host != "api.example.com" || got.URI != "/echo?q=1&q=2" || got.Body != "payload" {
		t.Errorf("app saw %+v", got)
	}
	h := got.Header
	if !slices.Equal(h["X-Multi"], []string{"a", "b"}) {
		t.Errorf("X-Multi reached the app as %q", h["X-Multi"])
	}
	// The forwarded fields reach the app as the request has them: the
	// gateway applies its policy to them before any runtime (httpwire.Forwarding).
	if xff := h.Get("X-Forwarded-For"); xff != "203.0.113.9" {
		t.Errorf("X-Forwarded-For %q", xff)
	}
	if h.Get("X-Forwarded-Host") != "" || h.Get("X-Forwarded-Proto") != "" {
		t.Errorf("X-Forwarded-Host %q, -Proto %q: the runtime added them", h.Get("X-Forwarded-Host"), h.Get("X-Forwarded-Proto"))
	}
	if h.Get("X-Request-Id") != "req-1" || h.Get("X-Hop") != "" {
		t.Errorf("X-Request-Id %q, X-Hop %q", h.Get("X-Request-Id"), h.Get("X-Hop"))
	}
	if !slices.Equal(res.Header["Set-Cookie"], []string{"a=1", "b=2"}) ||
		!slices.Equal(res.Header["X-Multi"], []string{"x", "y"}) {
		t.Errorf("response headers %v", res.Header)
	}
}

func TestLargeBodies(t *testing.T) {
	checkNoLeaks(t)
	inst := start(t, function(t, "hello"))
	srv := front(t, inst)
	in := make([]byte, 5<<20)
	rand.Read(in)
	res, err := http.Post(srv.URL+"/copy", "application/octet-stream", bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || !bytes.Equal(in, out) {
		t.Fatalf("5 MB echo: %d bytes back, equal=%v, err=%v", len(out), bytes.Equal(in, out), err)
	}
	res, body := get(t, srv.URL+"/big?n="+strconv.Itoa(5<<20))
	if res.ContentLength != 5<<20 || body != string(pattern(5<<20)) {
		t.Fatalf("5 MB response: length %d, %d bytes, intact=%v", res.ContentLength, len(body), body == string(pattern(5<<20)))
	}
}

func TestStreamingArrivesIncrementally(t *testing.T) {
	checkNoLeaks(t)
	inst := start(t, function(t, "hello"))
	srv := front(t, inst)
	res, err := http.Get(srv.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// The app holds its last chunk until released, so the first can only
	// arrive now if the proxy passed it on without waiting for the rest.
	select {
	case l := <-lines:
		if l != "first" {
			t.Fatalf("first line %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("first chunk did not arrive before the last was written")
	}
	get(t, "http://"+inst.addr+"/release")
	if l := <-lines; l != "last" {
		t.Fatalf("second line %q", l)
	}
}

func TestExitDuringRequest(t *testing.T) {
	checkNoLeaks(t)
	inst := start(t, function(t, "hello"))
	rec := httptest.NewRecorder()
	err := inst.Invoke(rec, httptest.NewRequest("GET", "/exit", nil))
	var e *runtime.Error
	if !errors.As(err, &e) || e.Type != "Runtime.ExitError" || !strings.Contains(e.Message, "exit status 3") {
		t.Fatalf("got %v", err)
	}
	if rec.Code != 200 || rec.Body.Len() != 0 || len(rec.Header()) != 0 {
		t.Fatalf("Invoke wrote %d %v %q on error", rec.Code, rec.Header(), rec.Body)
	}
	select {
	case <-inst.Done():
	default:
		t.Fatal("Done not closed after the process exited")
	}
	if inst.Err() == nil {
		t.Fatal("Err nil after exit")
	}
}

func TestInvokeCancelled(t *testing.T) {
	checkNoLeaks(t)
	inst := start(t, function(t, "hello"))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := inst.Invoke(httptest.NewRecorder(), httptest.NewRequest("GET", "/stream", nil).WithContext(ctx))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

func TestClientGoneMidResponse(t *testing.T) {
	checkNoLeaks(t)
	inst := start(t, function(t, "hello"))
	srv, errs := frontErrs(t, inst)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/stream", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(res.Body).ReadString('\n')
	if line != "first\n" {
		t.Fatalf("first line %q", line)
	}
	cancel()
	res.Body.Close()
	select {
	case err := <-errs:
		if !errors.Is(err, context.Canceled) || !errors.Is(err, http.ErrAbortHandler) {
			t.Fatalf("got %v, want the request's context error marked as an abort", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Invoke did not return after the client went away")
	}
}

func TestLambdaEnv(t *testing.T) {
	checkNoLeaks(t)
	f := function(t, "hello")
	f.Name = "orders"
	f.Env["AWS_REGION"] = "eu-west-1" // the function's own env wins
	f.Env["GREETING"] = "hi"
	inst := start(t, f)
	_, body := get(t, "http://"+inst.addr+"/env")
	var list []string
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := env[k]; dup {
			t.Errorf("%s set twice", k)
		}
		env[k] = v
	}
	port := strconv.Itoa(inst.Port())
	want := map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        "orders",
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/orders",
		"AWS_REGION":                      "eu-west-1",
		"AWS_DEFAULT_REGION":              "us-east-1",
		"LAMBDA_TASK_ROOT":                f.Cwd,
		"TZ":                              ":UTC",
		"PORT":                            port,
		"AWS_LWA_PORT":                    port,
		"GREETING":                        "hi",
		"PATH":                            os.Getenv("PATH"),
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	stream := env["AWS_LAMBDA_LOG_STREAM_NAME"]
	prefix := time.Now().UTC().Format("2006/01/02") + "/[$LATEST]"
	if !strings.HasPrefix(stream, prefix) || len(stream) != len(prefix)+32 {
		t.Errorf("AWS_LAMBDA_LOG_STREAM_NAME=%q", stream)
	}
}

func TestEnvStreamName(t *testing.T) {
	f := &config.Function{Name: "f", Memory: 256, Cwd: "/srv/f"}
	now := time.Date(2024, 3, 9, 23, 0, 0, 0, time.FixedZone("x", -5*3600))
	env := Env(f, "7", "", "8476a536-e9f4-11e8-9739-2dfe598c3fcd", 9000, now)
	if !slices.Contains(env, "AWS_LAMBDA_LOG_STREAM_NAME=2024/03/10/[7]8476a536e9f411e897392dfe598c3fcd") {
		t.Errorf("env %q", env)
	}
	if !slices.Contains(env, "AWS_LAMBDA_FUNCTION_VERSION=7") || !slices.Contains(env, "AWS_REGION=us-east-1") {
		t.Errorf("env %q", env)
	}
}

func TestOutOfMemoryDuringRequest(t *testing.T) {
	checkNoLeaks(t)
	f := function(t, "hello")
	f.Memory = 128
	inst := start(t, f)
	err := inst.Invoke(httptest.NewRecorder(), httptest.NewRequest("GET", "/alloc", nil))
	var e *runtime.Error
	if !errors.As(err, &e) || e.Type != "Runtime.OutOfMemory" || !strings.Contains(e.Message, "memory limit of 128 MB") {
		t.Fatalf("got %v", err)
	}
	if mb := inst.MaxMemoryMB(); mb < 100 || mb > 140 {
		t.Errorf("MaxMemoryMB %d, want about 128", mb)
	}
}
