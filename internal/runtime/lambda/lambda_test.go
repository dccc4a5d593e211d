package lambdart

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/lambdaspec"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// binDir holds the test functions under testdata, built once by TestMain
// with the real aws-lambda-go.
var binDir string

func TestMain(m *testing.M) {
	sandbox.MaybeRunStub()
	sandboxtest.InOwnMountNamespace()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "lambdart-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	pkgs, _ := filepath.Glob("testdata/*")
	args := []string{"build", "-o", dir + "/"}
	for _, p := range pkgs {
		args = append(args, "./"+p)
	}
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build test functions:", err)
		return 1
	}
	binDir = dir
	return m.Run()
}

func checkNoLeaks(t testing.TB) { sandboxtest.CheckNoLeaks(t) }

// newStarter returns a sandbox manager closed when the test ends.
func newStarter(t testing.TB) *sandbox.Manager {
	m, err := sandbox.New(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return m
}

// function returns a lambda function running the test function name.
func function(t testing.TB, name string) *config.Function {
	return &config.Function{
		Name:        "t-" + name,
		Runtime:     "lambda",
		Command:     []string{filepath.Join(binDir, name)},
		Cwd:         t.TempDir(),
		Memory:      1769, // a whole CPU, so start-up is quick on a small VM
		Timeout:     3 * time.Second,
		InitTimeout: 10 * time.Second,
		Concurrency: 1,
		EventFormat: "2.0",
	}
}

// lines collects an instance's output for assertions.
type lines struct {
	mu sync.Mutex
	l  []string
}

func (o *lines) add(_, _, line string) {
	o.mu.Lock()
	o.l = append(o.l, line)
	o.mu.Unlock()
}

func (o *lines) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.l, "\n")
}

func newRuntime(t testing.TB, f *config.Function, out *lines) *Runtime {
	o := Options{
		Function:  f,
		Region:    "eu-west-1",
		AccountID: "123456789012",
		Sandbox:   newStarter(t),
		Logger:    slog.New(slog.DiscardHandler),
	}
	if out != nil {
		o.Output = out.add
	}
	return New(o)
}

var ids atomic.Int64

func instanceID() string { return "i-" + strconv.FormatInt(ids.Add(1), 10) }

// start starts an instance that is stopped when the test ends.
func start(t testing.TB, f *config.Function, out *lines) *Instance {
	t.Helper()
	inst, err := newRuntime(t, f, out).Start(context.Background(), instanceID())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { inst.Stop(context.Background()) })
	return inst.(*Instance)
}

func invoke(t testing.TB, in *Instance, payload string, timeout time.Duration) (*runtime.Invocation, *runtime.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	inv := &runtime.Invocation{RequestID: "req-" + strconv.FormatInt(ids.Add(1), 10), Payload: []byte(payload)}
	res, err := in.InvokeEvent(ctx, inv)
	return inv, res, err
}

// held starts an invocation the echo function holds until release is
// called, and returns once the bootstrap has it (the Runtime API's state is
// invoking); wait waits for its answer.
func held(t *testing.T, in *Instance) (release func(), wait func() (*runtime.Invocation, error)) {
	t.Helper()
	hold := filepath.Join(t.TempDir(), "release")
	payload, _ := json.Marshal(map[string]string{"holdFile": hold})
	type result struct {
		inv *runtime.Invocation
		err error
	}
	done := make(chan result, 1)
	go func() {
		inv, _, err := invoke(t, in, string(payload), 10*time.Second)
		done <- result{inv, err}
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		in.mu.Lock()
		st := in.state
		in.mu.Unlock()
		if st == stateInvoking {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bootstrap never took the event (state %s)", st.name())
		}
	}
	released := false
	release = func() {
		if !released {
			released = true
			if err := os.WriteFile(hold, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(release)
	return release, func() (*runtime.Invocation, error) {
		release()
		r := <-done
		return r.inv, r.err
	}
}

func isDone(in *Instance) bool {
	select {
	case <-in.Done():
		return true
	default:
		return false
	}
}

func waitDone(t testing.TB, in *Instance) {
	t.Helper()
	select {
	case <-in.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("instance did not exit")
	}
}

func TestValue(t *testing.T) {
	checkNoLeaks(t)
	f := function(t, "echo")
	in := start(t, f, nil)
	if d := in.InitDuration(); d <= 0 || d > 5*time.Second {
		t.Errorf("InitDuration %v", d)
	}
	var pid float64
	for i := range 3 {
		cc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"k":"v"},"env":{},"client":{}}`))
		deadline := time.Now().Add(2 * time.Second)
		ctx := context.Background()
		inv := &runtime.Invocation{
			RequestID: "req-value-" + strconv.Itoa(i), Payload: []byte(`{"hello":"world"}`),
			Deadline: deadline, ClientContext: cc, CognitoIdentity: `{"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool-1"}`,
		}
		res, err := in.InvokeEvent(ctx, inv)
		if err != nil {
			t.Fatal(err)
		}
		if res.FunctionError != "" {
			t.Fatalf("function error %s: %s", res.ErrorType, res.Payload)
		}
		var got struct {
			Event         json.RawMessage
			RequestID     string
			ARN           string
			DeadlineMs    int64
			TraceID       string
			ClientContext struct{ Custom map[string]string }
			Identity      struct{ CognitoIdentityID, CognitoIdentityPoolID string }
			Pid           float64
		}
		if err := json.Unmarshal(res.Payload, &got); err != nil {
			t.Fatalf("%v: %s", err, res.Payload)
		}
		if string(got.Event) != `{"hello":"world"}` || got.RequestID != inv.RequestID ||
			got.ARN != "arn:aws:lambda:eu-west-1:123456789012:function:t-echo" ||
			got.DeadlineMs != deadline.UnixMilli() || !strings.HasPrefix(got.TraceID, "Root=1-") ||
			got.ClientContext.Custom["k"] != "v" || got.Identity.CognitoIdentityID != "id-1" ||
			got.Identity.CognitoIdentityPoolID != "pool-1" {
			t.Fatalf("got %+v", got)
		}
		if i > 0 && got.Pid != pid {
			t.Fatalf("invocation %d ran in pid %v, want the warm %v", i, got.Pid, pid)
		}
		pid = got.Pid
	}
	if isDone(in) || in.Err() != nil {
		t.Fatalf("instance died: %v", in.Err())
	}
}

var traceRE = regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$`)

func TestNextHeaders(t *testing.T) {
	checkNoLeaks(t)
	f := function(t, "raw")
	f.Timeout = 7 * time.Second
	in := start(t, f, nil)
	get := func(inv *runtime.Invocation) http.Header {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), f.Timeout)
		defer cancel()
		before := time.Now()
		res, err := in.InvokeEvent(ctx, inv)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Headers http.Header
			Event   json.RawMessage
		}
		if err := json.Unmarshal(res.Payload, &got); err != nil {
			t.Fatalf("%v: %s", err, res.Payload)
		}
		if string(got.Event) != string(inv.Payload) {
			t.Errorf("event %s, want %s", got.Event, inv.Payload)
		}
		h := got.Headers
		if h.Get(hdrRequestID) != inv.RequestID {
			t.Errorf("request id %q", h.Get(hdrRequestID))
		}
		ms, err := strconv.ParseInt(h.Get(hdrDeadline), 10, 64)
		if d := time.UnixMilli(ms).Sub(before); err != nil || d < f.Timeout-time.Second || d > f.Timeout {
			t.Errorf("deadline %q is %v after the invoke, want within the %v timeout", h.Get(hdrDeadline), d, f.Timeout)
		}
		if h.Get("Content-Type") != "application/json" || h.Get("Content-Length") != strconv.Itoa(len(inv.Payload)) {
			t.Errorf("content headers %v", h)
		}
		return h
	}

	h := get(&runtime.Invocation{RequestID: "8476a536-e9f4-11e8-9739-2dfe598c3fcd", Payload: []byte(`{"a":1}`)})
	if arn := h.Get(hdrFunctionARN); arn != "arn:aws:lambda:eu-west-1:123456789012:function:t-raw" {
		t.Errorf("ARN %q", arn)
	}
	if !traceRE.MatchString(h.Get(hdrTraceID)) {
		t.Errorf("trace id %q", h.Get(hdrTraceID))
	}
	for _, k := range []string{hdrClientContext, hdrCognitoIdentity} {
		if _, ok := h[k]; ok {
			t.Errorf("%s sent though the invocation had none", k)
		}
	}

	const trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	h = get(&runtime.Invocation{
		RequestID: "r2", Payload: []byte(`"s"`), TraceID: trace,
		FunctionARN:     "arn:aws:lambda:eu-west-1:123456789012:function:t-raw:prod",
		ClientContext:   base64.StdEncoding.EncodeToString([]byte(`{"custom":{}}`)),
		CognitoIdentity: `{"cognitoIdentityId":"x"}`,
	})
	if h.Get(hdrTraceID) != trace || h.Get(hdrFunctionARN) != "arn:aws:lambda:eu-west-1:123456789012:function:t-raw:prod" ||
		h.Get(hdrClientContext) != `{"custom":{}}` || h.Get(hdrCognitoIdentity) != `{"cognitoIdentityId":"x"}` {
		t.Errorf("headers %v", h)
	}
}

func TestEnv(t *testing.T) {
	f := function(t, "echo")
	f.Env = map[string]string{"GREETING": "hi", "AWS_REGION": "mars-1", "AWS_LAMBDA_RUNTIME_API": "evil:1", "PORT": "9"}
	env := Env(f, "", "eu-west-1", "i-1", "127.0.0.1:4321", time.Unix(0, 0))
	want := []string{"AWS_LAMBDA_RUNTIME_API=127.0.0.1:4321", "_HANDLER=echo", "GREETING=hi", "AWS_REGION=mars-1",
		"LAMBDA_TASK_ROOT=" + f.Cwd, "AWS_LAMBDA_FUNCTION_NAME=t-echo", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1769", "TZ=:UTC", "PORT=9"}
	for _, kv := range want {
		if !slices.Contains(env, kv) {
			t.Errorf("missing %s in %v", kv, env)
		}
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "AWS_LWA_PORT=") || kv == "AWS_LAMBDA_RUNTIME_API=evil:1" {
			t.Errorf("unexpected %s", kv)
		}
	}
}

func TestFunctionError(t *testing.T) {
	checkNoLeaks(t)
	in := start(t, function(t, "fail"), nil)
	for range 2 {
		_, res, err := invoke(t, in, `{}`, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if res.FunctionError != "Unhandled" || res.ErrorType != "errorString" ||
			string(res.Payload) != `{"errorMessage":"something went wrong","errorType":"errorString"}` {
			t.Fatalf("got %+v %s", res, res.Payload)
		}
	}
	if isDone(in) {
		t.Fatal("a returned error ended the instance")
	}
}

func TestPanic(t *testing.T) {
	checkNoLeaks(t)
	in := start(t, function(t, "panic"), nil)
	_, res, err := invoke(t, in, `{}`, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		ErrorMessage, ErrorType string
		StackTrace              []any
	}
	if err := json.Unmarshal(res.Payload, &doc); err != nil {
		t.Fatalf("%v: %s", err, res.Payload)
	}
	if res.FunctionError != "Unhandled" || res.ErrorType != "string" || doc.ErrorMessage != "handler exploded" ||
		len(doc.StackTrace) == 0 {
		t.Fatalf("got %+v %s", res, res.Payload)
	}
	// aws-lambda-go exits after reporting a panic: the instance is gone,
	// and was never free again (it did not ask for another event).
	waitDone(t, in)
	if e := runtime.AsError(in.Err()); e.Type != "Runtime.ExitError" {
		t.Fatalf("Err %v", in.Err())
	}
	select {
	case <-in.Free():
		t.Fatal("an instance that exited after its answer said it was free")
	default:
	}
	// An event for it now never reaches a bootstrap: not delivered, so the
	// caller may run it elsewhere.
	_, _, err = invoke(t, in, `{}`, time.Second)
	if nd, ok := runtime.AsNotDelivered(err); !ok || runtime.AsError(nd.Err).Type != "Runtime.ExitError" {
		t.Fatalf("invoke after the exit: %v", err)
	}
}

// After an answer an instance is free again only once its bootstrap asks
// for the next event.
func TestFreeAfterNext(t *testing.T) {
	checkNoLeaks(t)
	in := start(t, function(t, "echo"), nil)
	select {
	case <-in.Free():
	default:
		t.Fatal("a ready instance is not free")
	}
	release, wait := held(t, in)
	select {
	case <-in.Free():
		// Free is the channel of the last answer, closed already: the pool
		// only asks after an invocation returns.
	default:
		t.Fatal("free channel replaced before an answer")
	}
	release()
	if _, err := wait(); err != nil {
		t.Fatal(err)
	}
	in.mu.Lock()
	answered := in.free
	in.mu.Unlock()
	select {
	case <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("the bootstrap's next /next did not free the instance")
	}
	in.mu.Lock()
	st := in.state
	in.mu.Unlock()
	if st != stateReady {
		t.Fatalf("free while the Runtime API state is %s", st.name())
	}
}

func TestExitDuringInvocation(t *testing.T) {
	checkNoLeaks(t)
	in := start(t, function(t, "exit"), nil)
	inv, _, err := invoke(t, in, `{}`, 3*time.Second)
	var e *runtime.Error
	if !errors.As(err, &e) || e.Type != "Runtime.ExitError" ||
		e.Message != "RequestId: "+inv.RequestID+" Error: Runtime exited with error: exit status 3" {
		t.Fatalf("got %v", err)
	}
	waitDone(t, in)
	// A dead instance refuses work with the same kind of error.
	if _, _, err := invoke(t, in, `{}`, time.Second); !errors.As(err, &e) || e.Type != "Runtime.ExitError" {
		t.Fatalf("after exit: %v", err)
	}
}

func TestOutOfMemory(t *testing.T) {
	checkNoLeaks(t)
	m := newStarter(t)
	if !m.Enforced() {
		sandboxtest.SkipWithoutCgroups(t, "memory limits are not enforced here")
	}
	f := function(t, "oom")
	f.Memory = 128
	f.Timeout = 20 * time.Second
	rt := New(Options{Function: f, Sandbox: m, Logger: slog.New(slog.DiscardHandler)})
	inst, err := rt.Start(context.Background(), instanceID())
	if err != nil {
		t.Fatal(err)
	}
	in := inst.(*Instance)
	defer in.Stop(context.Background())
	inv, res, err := invoke(t, in, `{}`, f.Timeout)
	var e *runtime.Error
	if !errors.As(err, &e) || e.Type != "Runtime.OutOfMemory" ||
		!strings.HasPrefix(e.Message, "RequestId: "+inv.RequestID+" Error: Runtime exited with error: signal: killed") ||
		!strings.Contains(e.Message, "memory limit of 128 MB") {
		t.Fatalf("got %v (result %+v)", err, res)
	}
	waitDone(t, in)
}

func TestTimeout(t *testing.T) {
	checkNoLeaks(t)
	in := start(t, function(t, "sleep"), nil)
	began := time.Now()
	_, _, err := invoke(t, in, `{}`, 300*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if took := time.Since(began); took > time.Second {
		t.Fatalf("timed out after %v", took)
	}
	// The bootstrap is still busy with the abandoned event: the instance
	// refuses more work until the pool replaces it.
	if _, _, err := invoke(t, in, `{}`, time.Second); !errors.Is(err, ErrBusy) {
		t.Fatalf("after timeout: %v", err)
	}
	if isDone(in) {
		t.Fatal("instance exited")
	}
}

func TestConcurrentInvokeEvent(t *testing.T) {
	checkNoLeaks(t)
	in := start(t, function(t, "echo"), nil)
	_, wait := held(t, in)
	for range 5 {
		if _, _, err := invoke(t, in, `{}`, time.Second); !errors.Is(err, ErrBusy) {
			t.Fatalf("concurrent InvokeEvent: %v, want ErrBusy", err)
		}
	}
	if _, err := wait(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := invoke(t, in, `{}`, time.Second); err != nil {
		t.Fatalf("after the first finished: %v", err)
	}
}

// post calls the instance's Runtime API the way a confused bootstrap would.
func post(t *testing.T, in *Instance, method, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+in.RuntimeAPI()+"/2018-06-01"+path, strings.NewReader(`"x"`))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, strings.TrimSpace(string(b))
}

func TestRuntimeAPIStates(t *testing.T) {
	checkNoLeaks(t)
	in := start(t, function(t, "echo"), nil)
	_, wait := held(t, in) // the bootstrap now holds the event
	st, body := post(t, in, "POST", "/runtime/invocation/no-such-id/response")
	if st != 400 || body != `{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}` {
		t.Errorf("unknown id: %d %s", st, body)
	}
	st, body = post(t, in, "GET", "/runtime/invocation/next")
	if st != 403 || body != `{"errorMessage":"State transition from Running to Ready failed for runtime. Error: State transition is not allowed","errorType":"InvalidStateTransition"}` {
		t.Errorf("/next while invoking: %d %s", st, body)
	}
	st, body = post(t, in, "POST", "/runtime/init/error")
	if st != 403 || !strings.Contains(body, `"errorType":"InvalidStateTransition"`) {
		t.Errorf("/init/error after init: %d %s", st, body)
	}
	inv, err := wait()
	if err != nil {
		t.Fatal(err)
	}
	st, body = post(t, in, "POST", "/runtime/invocation/"+inv.RequestID+"/response")
	if st != 403 || !strings.Contains(body, "to InvocationResponse failed") {
		t.Errorf("second answer: %d %s", st, body)
	}
	st, _ = post(t, in, "POST", "/runtime/invocation/"+inv.RequestID+"/error")
	if st != 403 {
		t.Errorf("error after answer: %d", st)
	}
	// None of that disturbed the instance.
	if _, res, err := invoke(t, in, `{}`, time.Second); err != nil || res.FunctionError != "" {
		t.Fatalf("after: %v %+v", err, res)
	}
}

func TestResponseTooLarge(t *testing.T) {
	checkNoLeaks(t)
	var out lines
	in := start(t, function(t, "big"), &out)
	// Just under the limit passes (the JSON string adds two quotes).
	_, res, err := invoke(t, in, fmt.Sprintf(`{"n":%d}`, lambdaspec.MaxSyncPayload-2), 3*time.Second)
	if err != nil || res.FunctionError != "" || len(res.Payload) != lambdaspec.MaxSyncPayload {
		t.Fatalf("at the limit: %v, %d bytes", err, len(res.Payload))
	}
	_, res, err = invoke(t, in, fmt.Sprintf(`{"n":%d}`, lambdaspec.MaxSyncPayload), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"errorMessage":"Response payload size (%d bytes) exceeded maximum allowed payload size (6291456 bytes).","errorType":"Function.ResponseSizeTooLarge"}`, lambdaspec.MaxSyncPayload+2)
	if res.FunctionError != "Unhandled" || res.ErrorType != "Function.ResponseSizeTooLarge" || string(res.Payload) != want {
		t.Fatalf("got %+v %s", res, res.Payload)
	}
	// aws-lambda-go treats the 413 as fatal and exits.
	waitDone(t, in)
	if !strings.Contains(out.String(), "got unexpected status code: 413") {
		t.Errorf("bootstrap did not see a 413; output:\n%s", out.String())
	}
}

func TestInitExit(t *testing.T) {
	checkNoLeaks(t)
	_, err := newRuntime(t, function(t, "initfail"), nil).Start(context.Background(), instanceID())
	var e *runtime.Error
	if !errors.As(err, &e) || e.Type != "Runtime.ExitError" || !strings.Contains(e.Message, "exit status 1") ||
		!strings.Contains(e.Message, "init: cannot open config.json") {
		t.Fatalf("got %v", err)
	}
}

func TestInitError(t *testing.T) {
	checkNoLeaks(t)
	f := function(t, "raw")
	f.Env = map[string]string{"RAW_INIT_ERROR": "1"}
	_, err := newRuntime(t, f, nil).Start(context.Background(), instanceID())
	var e *runtime.Error
	if !errors.As(err, &e) || e.Type != "Runtime.ImportModuleError" || e.Message != "Cannot find module 'app'" {
		t.Fatalf("got %v", err)
	}
}

func TestInitTimeout(t *testing.T) {
	checkNoLeaks(t)
	f := function(t, "never")
	f.Command = []string{"sleep", "60"} // a bootstrap that never asks for an event
	f.InitTimeout = 300 * time.Millisecond
	began := time.Now()
	_, err := newRuntime(t, f, nil).Start(context.Background(), instanceID())
	var e *runtime.Error
	if !errors.As(err, &e) || e.Type != "Runtime.InitError" || !strings.HasPrefix(e.Message, "init timed out after 300ms") {
		t.Fatalf("got %v", err)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Fatalf("took %v", took)
	}
}

func TestStopClosesRuntimeAPI(t *testing.T) {
	checkNoLeaks(t)
	in := start(t, function(t, "echo"), nil)
	addr := in.RuntimeAPI()
	if err := in.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := in.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if res, err := http.Get("http://" + addr + "/2018-06-01/runtime/invocation/next"); err == nil {
		res.Body.Close()
		t.Fatal("Runtime API still answers after Stop")
	}
	if _, _, err := invoke(t, in, `{}`, time.Second); runtime.AsError(err).Type != "Runtime.ExitError" {
		t.Fatalf("invoke after Stop: %v", err)
	}
}

// front serves in the way the gateway would: errors become their status
// and type.
func front(t testing.TB, in *Instance) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := in.Invoke(w, r); err != nil {
			e := runtime.AsError(err)
			w.Header().Set("X-Error-Type", e.Type)
			http.Error(w, e.Message, e.Status)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPRoundTrip(t *testing.T) {
	for _, format := range []string{"2.0", "1.0"} {
		t.Run(format, func(t *testing.T) {
			checkNoLeaks(t)
			name := map[string]string{"2.0": "apiv2", "1.0": "apiv1"}[format]
			f := function(t, name)
			f.EventFormat = format
			srv := front(t, start(t, f, nil))

			req, _ := http.NewRequest("POST", srv.URL+"/items/42?x=1&x=2&y=z", strings.NewReader(`{"name":"widget"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Request-Id", "gw-req-1")
			req.Header.Add("X-Rep", "a")
			req.Header.Add("X-Rep", "b")
			req.AddCookie(&http.Cookie{Name: "session", Value: "s1"})
			req.AddCookie(&http.Cookie{Name: "theme", Value: "dark"})
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("%d %v: %s", res.StatusCode, err, b)
			}
			if got["method"] != "POST" || got["path"] != "/items/42" || got["body"] != `{"name":"widget"}` ||
				got["requestId"] != "gw-req-1" {
				t.Errorf("event as the function saw it: %s", b)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			cookies := res.Header.Values("Set-Cookie")
			if !slices.Equal(cookies, []string{"a=1; Path=/", "b=2"}) {
				t.Errorf("Set-Cookie %q", cookies)
			}
			switch format {
			case "2.0":
				h := got["headers"].(map[string]any)
				if res.StatusCode != 201 || res.Header.Get("X-Fn") != "v2" || got["query"] != "x=1&x=2&y=z" ||
					h["x-rep"] != "a,b" || fmt.Sprint(got["cookies"]) != "[session=s1 theme=dark]" || got["version"] != "2.0" {
					t.Errorf("2.0: %d %v: %s", res.StatusCode, res.Header, b)
				}
			case "1.0":
				h := got["headers"].(map[string]any)
				if res.StatusCode != 202 || !slices.Equal(res.Header.Values("X-Multi"), []string{"x", "y"}) ||
					fmt.Sprint(got["query"].(map[string]any)["x"]) != "[1 2]" || fmt.Sprint(h["X-Rep"]) != "[a b]" {
					t.Errorf("1.0: %d %v: %s", res.StatusCode, res.Header, b)
				}
			}

			// A binary body travels base64 and arrives as bytes.
			res, err = http.Get(srv.URL + "/bin?binary=1")
			if err != nil {
				t.Fatal(err)
			}
			b, _ = io.ReadAll(res.Body)
			res.Body.Close()
			want := map[string]string{"2.0": "\x00\x01\x02\xff\xfe", "1.0": "\x89PNG\x00"}[format]
			if res.StatusCode != 200 || string(b) != want {
				t.Errorf("binary: %d %q", res.StatusCode, b)
			}
		})
	}
}

func TestHTTPFunctionError(t *testing.T) {
	checkNoLeaks(t)
	in := start(t, function(t, "fail"), nil)
	srv := front(t, in)
	res, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 502 || string(b) != `{"message": "Internal server error"}` ||
		res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q", res.StatusCode, b)
	}
	if isDone(in) {
		t.Fatal("a function error ended the instance")
	}
}

func TestHTTPRequestTooLarge(t *testing.T) {
	checkNoLeaks(t)
	in := start(t, function(t, "apiv2"), nil)
	r := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", lambdaspec.MaxSyncPayload+1)))
	r.ContentLength = -1 // make it read, not trust the length
	w := httptest.NewRecorder()
	err := in.Invoke(w, r)
	var e *runtime.Error
	if !errors.As(err, &e) || e.Type != "RequestTooLargeException" || e.Status != 413 {
		t.Fatalf("got %v", err)
	}
	if w.Code != 200 || w.Body.Len() != 0 {
		t.Fatalf("Invoke wrote %d %q; the caller answers", w.Code, w.Body)
	}
}
