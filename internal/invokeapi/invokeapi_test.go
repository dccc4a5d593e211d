package invokeapi_test

import (
	"bytes"
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
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/gateway"
	"github.com/stokehq/stoke/internal/invokeapi"
	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/record"
	httprt "github.com/stokehq/stoke/internal/runtime/http"
	lambdart "github.com/stokehq/stoke/internal/runtime/lambda"
	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
	"github.com/stokehq/stoke/internal/store"
)

// action is what the test apps are asked to do.
type action struct {
	Action string `json:"action"`
	Path   string `json:"path"` // hold: answer once this file exists
}

// The test binary doubles as the functions: an HTTP app (STOKE_IA_APP) and
// a Lambda bootstrap built with aws-lambda-go (STOKE_IA_LAMBDA).
func TestMain(m *testing.M) {
	sandbox.MaybeRunStub()
	switch {
	case os.Getenv("STOKE_IA_APP") != "":
		http.HandleFunc("POST /events", func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			var a action
			_ = json.Unmarshal(body, &a)
			switch a.Action {
			case "exit":
				os.Exit(2)
			case "sleep":
				time.Sleep(time.Second)
			case "hold":
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
					if _, err := os.Stat(a.Path); err == nil {
						break
					}
				}
			case "fail":
				http.Error(w, "it broke", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"echo":%s,"requestId":%q,"traceparent":%q}`, body, r.Header.Get("X-Request-Id"), r.Header.Get("Traceparent"))
		})
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-App", "yes")
			fmt.Fprintf(w, "hi %s %s %s", r.Method, r.URL.Path, r.URL.RawQuery)
		})
		// Every request the app's server reads is counted, whatever its
		// path, and each response says which request it answers: a request
		// smuggled inside another shows as a count too many or an answer
		// to the wrong request (FuzzProxyEventNoSmuggling).
		var served atomic.Int64
		count := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Count", strconv.FormatInt(served.Add(1), 10))
			w.Header().Set("X-Echo-Id", r.Header.Get("X-Request-Id"))
			http.DefaultServeMux.ServeHTTP(w, r)
		})
		_ = http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), count)
		return
	case os.Getenv("STOKE_IA_LAMBDA") == "initfail":
		os.Exit(3)
	case os.Getenv("STOKE_IA_LAMBDA") != "":
		awslambda.Start(func(ctx context.Context, ev json.RawMessage) (any, error) {
			var a action
			_ = json.Unmarshal(ev, &a)
			switch a.Action {
			case "fail":
				return nil, errors.New("handler said no")
			case "exit":
				os.Exit(2)
			}
			lc, _ := lambdacontext.FromContext(ctx)
			return map[string]any{"event": ev, "requestId": lc.AwsRequestID, "arn": lc.InvokedFunctionArn}, nil
		})
		return
	}
	sandboxtest.InOwnMountNamespace()
	os.Exit(m.Run())
}

const (
	keyID  = "AKIDSTOKETEST"
	secret = "stoke-test-secret"
)

// backend is the server's part: the real gateway, START/END/REPORT lines
// per request for Tail.
type backend struct {
	gw *gateway.Gateway
	mu sync.Mutex
	// events are functions' Event settings (EventConfigs); Lambda's
	// defaults for those not in it.
	events map[string]invokeapi.EventConfig
	// lines and records by request id
	lines map[string][]string
	recs  map[string][]record.Record
}

func (b *backend) Run(ctx context.Context, c gateway.Call) gateway.Outcome { return b.gw.Run(ctx, c) }
func (b *backend) Lookup(name string) (string, bool) {
	if fn := b.gw.Function(name); fn != nil {
		return fn.Version, true
	}
	return "", false
}
func (b *backend) EventConfig(name string) (invokeapi.EventConfig, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.events[name]
	return c, ok
}
func (b *backend) Tail(_ context.Context, _, id string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lines[id]
}
func (b *backend) Begin(r *record.Record) {
	b.mu.Lock()
	b.lines[r.RequestID] = append(b.lines[r.RequestID], record.StartLine(r))
	b.mu.Unlock()
}
func (b *backend) End(r *record.Record) {
	b.mu.Lock()
	b.lines[r.RequestID] = append(b.lines[r.RequestID], record.EndLine(r), record.ReportLine(r))
	b.recs[r.RequestID] = append(b.recs[r.RequestID], *r)
	b.mu.Unlock()
}
func (b *backend) records(id string) []record.Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]record.Record(nil), b.recs[id]...)
}
func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, r := range b.recs {
		n += len(r)
	}
	return n
}

type fixture struct {
	t   testing.TB
	sb  *sandbox.Manager
	be  *backend
	dir string // data dir of the store
}

func newFixture(t testing.TB) *fixture {
	sandboxtest.CheckNoLeaks(t)
	sb, err := sandbox.New(slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	f := &fixture{t: t, sb: sb, be: &backend{lines: map[string][]string{}, recs: map[string][]record.Record{}}, dir: t.TempDir()}
	f.be.gw = gateway.New(gateway.Options{Timeout: 10 * time.Second, MaxBodyBytes: 6 << 20, Recorder: f.be})
	return f
}

// function deploys name at version "1": an http app, or with lambda a
// bootstrap.
func (f *fixture) function(name string, lambdaKind bool, timeout time.Duration, o pool.Options) *gateway.Function {
	cf := &config.Function{
		Name: name, Runtime: "http", Command: []string{os.Args[0]}, Cwd: f.t.TempDir(),
		Env:    map[string]string{"STOKE_IA_APP": "1"},
		Memory: 1769, Timeout: timeout, Concurrency: 1, InitTimeout: 10 * time.Second,
		Readiness: config.Readiness{Protocol: "http", Path: "/", StatusMin: 100, StatusMax: 499},
	}
	if lambdaKind {
		cf.Runtime, cf.Env = "lambda", map[string]string{"STOKE_IA_LAMBDA": name}
		o.Runtime = lambdart.New(lambdart.Options{Function: cf, Version: "1", Sandbox: f.sb})
	} else {
		o.Runtime = httprt.New(httprt.Options{Function: cf, Version: "1", Sandbox: f.sb})
	}
	if o.MaxInstances == 0 {
		o.MaxInstances = 2
	}
	p := pool.New(o)
	p.Start()
	f.t.Cleanup(p.Close)
	return &gateway.Function{Name: name, Version: "1", MemoryMB: 1769, Timeout: timeout, Pool: p}
}

func (f *fixture) openStore() *store.Store {
	s, err := store.Open(context.Background(), f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// serve starts the API on a loopback server; Close is the caller's (or cleanup's).
func (f *fixture) serve(o invokeapi.Options) (*invokeapi.API, *httptest.Server) {
	if o.Credentials == nil {
		o.Credentials = []config.Credential{{AccessKeyID: keyID, SecretAccessKey: secret}}
	}
	api := invokeapi.New(f.be, o)
	srv := httptest.NewServer(api.Handler())
	f.t.Cleanup(srv.Close)
	return api, srv
}

func client(url, key, sec string) *lambda.Client {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(key, sec, "")}
	return lambda.NewFromConfig(cfg, func(o *lambda.Options) {
		o.BaseEndpoint = aws.String(url)
		o.Retryer = aws.NopRetryer{}
	})
}

func invoke(t *testing.T, c *lambda.Client, in *lambda.InvokeInput) *lambda.InvokeOutput {
	t.Helper()
	out, err := c.Invoke(context.Background(), in)
	if err != nil {
		t.Fatalf("invoke %s: %v", aws.ToString(in.FunctionName), err)
	}
	return out
}

// apiCode is the error code the SDK surfaced.
func apiCode(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an API error, got %v", err)
	}
	return ae.ErrorCode()
}

func v2Event(method, path, query string) []byte {
	ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "$default", RawPath: path, RawQueryString: query,
		Headers: map[string]string{"accept": "text/plain"}}
	ev.RequestContext.HTTP.Method, ev.RequestContext.HTTP.Path = method, path
	ev.RequestContext.DomainName = "example.com"
	b, _ := json.Marshal(ev)
	return b
}

func TestSignedRequestResponseProxyEventAndTail(t *testing.T) {
	f := newFixture(t)
	f.be.gw.Set([]*gateway.Function{f.function("web", false, 5*time.Second, pool.Options{})})
	_, srv := f.serve(invokeapi.Options{})
	c := client(srv.URL, keyID, secret)

	out := invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("web"), Payload: v2Event("GET", "/hello", "a=1"), LogType: types.LogTypeTail})
	if out.StatusCode != 200 || aws.ToString(out.ExecutedVersion) != "1" || out.FunctionError != nil {
		t.Fatalf("status %d version %q function error %v", out.StatusCode, aws.ToString(out.ExecutedVersion), out.FunctionError)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out.Payload, &resp); err != nil {
		t.Fatalf("payload is not a proxy response: %v: %s", err, out.Payload)
	}
	if resp.StatusCode != 200 || resp.Body != "hi GET /hello a=1" || resp.Headers["x-app"] != "yes" {
		t.Errorf("proxy response: %+v", resp)
	}
	logs, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), "START RequestId: ") || !strings.Contains(string(logs), "REPORT RequestId: ") ||
		!strings.Contains(string(logs), "\tBilled Duration: ") {
		t.Errorf("log tail: %q", logs)
	}

	// Not a proxy event: POSTed to /events as Lambda Web Adapter does.
	out = invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("web"), Payload: []byte(`{"n":1}`)})
	var echo struct {
		Echo      map[string]int
		RequestID string
	}
	if err := json.Unmarshal(out.Payload, &echo); err != nil || echo.Echo["n"] != 1 || echo.RequestID == "" {
		t.Errorf("pass-through payload %s (%v)", out.Payload, err)
	}
	if out.LogResult != nil {
		t.Error("LogResult without Tail")
	}
	if rs := f.be.records(echo.RequestID); len(rs) != 1 || rs[0].Status != 200 || rs[0].Function != "web" {
		t.Errorf("the invocation's record: %+v", rs)
	}
}

func TestFunctionNameForms(t *testing.T) {
	f := newFixture(t)
	f.be.gw.Set([]*gateway.Function{f.function("web", false, 5*time.Second, pool.Options{})})
	_, srv := f.serve(invokeapi.Options{})
	c := client(srv.URL, keyID, secret)
	for _, in := range []*lambda.InvokeInput{
		{FunctionName: aws.String("web")},
		{FunctionName: aws.String("web:1")},
		{FunctionName: aws.String("web:$LATEST")},
		{FunctionName: aws.String("web"), Qualifier: aws.String("1")},
		{FunctionName: aws.String("arn:aws:lambda:us-east-1:000000000000:function:web")},
		{FunctionName: aws.String("arn:aws:lambda:us-east-1:000000000000:function:web:1")},
		{FunctionName: aws.String("000000000000:function:web")},
		{FunctionName: aws.String("000000000000:function:web:$LATEST")},
	} {
		in.Payload = []byte(`{}`)
		out := invoke(t, c, in)
		if out.StatusCode != 200 || !bytes.Contains(out.Payload, []byte(`"echo":{}`)) {
			t.Errorf("%s q=%s: %d %s", aws.ToString(in.FunctionName), aws.ToString(in.Qualifier), out.StatusCode, out.Payload)
		}
	}
	for name, msg := range map[string]string{
		"nope":   "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope",
		"web:7":  "Function not found: arn:aws:lambda:us-east-1:000000000000:function:web:7",
		"web:v2": "Function not found: arn:aws:lambda:us-east-1:000000000000:function:web:v2",
		"arn:aws:lambda:eu-west-1:000000000000:function:web": "Function not found: arn:aws:lambda:eu-west-1:000000000000:function:web",
		"111111111111:function:web":                          "Function not found: arn:aws:lambda:us-east-1:111111111111:function:web",
	} {
		_, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(name)})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) || aws.ToString(nf.Message) != msg || aws.ToString(nf.Type) != "User" {
			t.Errorf("%s: want ResourceNotFoundException %q, got %v", name, msg, err)
		}
	}
	_, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("web:1"), Qualifier: aws.String("2")})
	if code := apiCode(t, err); code != "InvalidParameterValueException" {
		t.Errorf("conflicting qualifiers: %s", code)
	}
	_, err = c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("we b")})
	if code := apiCode(t, err); code != "ValidationException" {
		t.Errorf("bad name: %s", code)
	}
}

// TestNotFoundBodyExact checks the bytes clients other than the Go SDK see.
func TestNotFoundBodyExact(t *testing.T) {
	f := newFixture(t)
	_, srv := f.serve(invokeapi.Options{Auth: "none"})
	resp, err := http.Post(srv.URL+"/2015-03-31/functions/nope/invocations", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `{"Type":"User","message":"Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope"}`
	if resp.StatusCode != 404 || string(body) != want || resp.Header.Get("x-amzn-ErrorType") != "ResourceNotFoundException" ||
		len(resp.Header.Get("x-amzn-RequestId")) != 36 {
		t.Errorf("got %d %s %v", resp.StatusCode, body, resp.Header)
	}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	f.be.gw.Set([]*gateway.Function{f.function("web", false, 5*time.Second, pool.Options{})})
	_, srv := f.serve(invokeapi.Options{})
	ctx := context.Background()
	in := &lambda.InvokeInput{FunctionName: aws.String("web"), Payload: []byte(`{}`)}

	_, err := client(srv.URL, keyID, "wrong-secret").Invoke(ctx, in)
	if code := apiCode(t, err); code != "InvalidSignatureException" {
		t.Errorf("wrong secret: %s (%v)", code, err)
	}
	_, err = client(srv.URL, "AKIDUNKNOWN", secret).Invoke(ctx, in)
	if code := apiCode(t, err); code != "UnrecognizedClientException" {
		t.Errorf("unknown key: %s (%v)", code, err)
	}
	if !strings.Contains(err.Error(), "The security token included in the request is invalid.") {
		t.Errorf("unknown key message: %v", err)
	}
	// Unsigned: Lambda's front door answers before anything else.
	resp, err := http.Post(srv.URL+"/2015-03-31/functions/web/invocations", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || string(body) != `{"message":"Missing Authentication Token"}` ||
		resp.Header.Get("X-Amzn-ErrorType") != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned: %d %s", resp.StatusCode, body)
	}

	// A request whose body was changed after signing.
	tampered := func(change func(*http.Request)) *lambda.Client {
		hc := &http.Client{Transport: tamper{http.DefaultTransport, change}}
		cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, ""), HTTPClient: hc}
		return lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = aws.String(srv.URL); o.Retryer = aws.NopRetryer{} })
	}
	_, err = tampered(func(r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(bytes.Replace(b, []byte(`"a":1`), []byte(`"a":2`), 1)))
	}).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("web"), Payload: []byte(`{"a":1}`)})
	if code := apiCode(t, err); code != "InvalidSignatureException" || !strings.Contains(err.Error(), "does not match the signature you provided") {
		t.Errorf("tampered body: %s (%v)", code, err)
	}
	_, err = tampered(func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD") }).Invoke(ctx, in)
	if code := apiCode(t, err); code != "InvalidSignatureException" || !strings.Contains(err.Error(), "x-amz-content-sha256") {
		t.Errorf("unsigned payload: %s (%v)", code, err)
	}

	// The server's clock is 20 minutes ahead of the client's.
	_, skewed := f.serve(invokeapi.Options{Now: func() time.Time { return time.Now().Add(20 * time.Minute) }})
	_, err = client(skewed.URL, keyID, secret).Invoke(ctx, in)
	if code := apiCode(t, err); code != "InvalidSignatureException" || !strings.Contains(err.Error(), "Signature expired") {
		t.Errorf("skewed clock: %s (%v)", code, err)
	}

	// Signed with the wrong region's scope.
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, "")}
	rc := lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = aws.String(srv.URL); o.Retryer = aws.NopRetryer{} })
	_, err = rc.Invoke(ctx, in)
	if code := apiCode(t, err); code != "InvalidSignatureException" || !strings.Contains(err.Error(), "scoped to a valid region") {
		t.Errorf("wrong region: %s (%v)", code, err)
	}

	if out := invoke(t, client(srv.URL, keyID, secret), in); out.StatusCode != 200 {
		t.Errorf("signed: %d", out.StatusCode)
	}
}

// tamper changes a request after the SDK signed it.
type tamper struct {
	rt     http.RoundTripper
	change func(*http.Request)
}

func (tp tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	tp.change(r)
	return tp.rt.RoundTrip(r)
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t)
	f.be.gw.Set([]*gateway.Function{f.function("web", false, 5*time.Second, pool.Options{})})
	_, srv := f.serve(invokeapi.Options{})
	c := client(srv.URL, keyID, secret)
	ctx := context.Background()

	_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("web"), Payload: []byte(`{"a":`)})
	var ic *types.InvalidRequestContentException
	if !errors.As(err, &ic) || !strings.HasPrefix(aws.ToString(ic.Message), "Could not parse request body into json: ") {
		t.Errorf("bad json: %v", err)
	}
	big := append(append([]byte(`"`), bytes.Repeat([]byte("x"), 6<<20)...), '"')
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("web"), Payload: big})
	var tl *types.RequestTooLargeException
	if !errors.As(err, &tl) {
		t.Errorf("7 MB: %v", err)
	}
	event := append(append([]byte(`"`), bytes.Repeat([]byte("x"), 1<<20)...), '"')
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("web"), Payload: event, InvocationType: types.InvocationTypeEvent})
	if !errors.As(err, &tl) || !strings.Contains(aws.ToString(tl.Message), "1048576") {
		t.Errorf("1 MB event: %v", err)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("web"), InvocationType: "Sometimes"})
	if code := apiCode(t, err); code != "InvalidParameterValueException" {
		t.Errorf("invocation type: %s", code)
	}
	if n := f.be.count(); n != 0 {
		t.Errorf("%d invocations ran for bad requests", n)
	}

	// DryRun: checks, runs nothing.
	out := invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("web"), InvocationType: types.InvocationTypeDryRun})
	if out.StatusCode != 204 || f.be.count() != 0 {
		t.Errorf("dry run: %d, %d invocations", out.StatusCode, f.be.count())
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("nope"), InvocationType: types.InvocationTypeDryRun})
	if code := apiCode(t, err); code != "ResourceNotFoundException" {
		t.Errorf("dry run of nothing: %s", code)
	}
}

func TestFunctionFailures(t *testing.T) {
	f := newFixture(t)
	one := f.function("one", false, 5*time.Second, pool.Options{MaxInstances: 1, QueueSize: 0})
	f.be.gw.Set([]*gateway.Function{f.function("web", false, 300*time.Millisecond, pool.Options{}), one})
	_, srv := f.serve(invokeapi.Options{})
	c := client(srv.URL, keyID, secret)

	// The process exits mid-invocation.
	out := invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("web"), Payload: []byte(`{"action":"exit"}`)})
	var doc struct{ ErrorType, ErrorMessage string }
	if err := json.Unmarshal(out.Payload, &doc); err != nil {
		t.Fatalf("exit payload %q: %v", out.Payload, err)
	}
	if out.StatusCode != 200 || aws.ToString(out.FunctionError) != "Unhandled" || doc.ErrorType != "Runtime.ExitError" ||
		!regexp.MustCompile(`^RequestId: [0-9a-f-]{36} Error: Runtime exited with error: exit status 2$`).MatchString(doc.ErrorMessage) {
		t.Errorf("exit: %d %v %+v", out.StatusCode, out.FunctionError, doc)
	}

	// Function timeout: Lambda's body.
	out = invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("web"), Payload: []byte(`{"action":"sleep"}`)})
	doc = struct{ ErrorType, ErrorMessage string }{}
	_ = json.Unmarshal(out.Payload, &doc)
	if out.StatusCode != 200 || aws.ToString(out.FunctionError) != "Unhandled" ||
		!regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [0-9a-f-]{36} Task timed out after 0\.30 seconds$`).MatchString(doc.ErrorMessage) {
		t.Errorf("timeout: %d %v %s", out.StatusCode, out.FunctionError, out.Payload)
	}

	// Throttle: one instance, busy, no queue.
	invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("one")}) // warm it
	hold := filepath.Join(t.TempDir(), "release")
	held, _ := json.Marshal(action{Action: "hold", Path: hold})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("one"), Payload: held})
	}()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if ins := one.Pool.(*pool.Pool).Instances(); len(ins) == 1 && ins[0].State == pool.StateBusy {
			break // the held invocation is on the only instance
		}
		if time.Now().After(deadline) {
			t.Fatal("the held invocation never reached the instance")
		}
	}
	_, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("one")})
	if werr := os.WriteFile(hold, nil, 0o644); werr != nil {
		t.Fatal(werr)
	}
	<-done
	var tm *types.TooManyRequestsException
	if !errors.As(err, &tm) || tm.Reason != types.ThrottleReasonConcurrentInvocationLimitExceeded || aws.ToString(tm.Message) != "Rate Exceeded." {
		t.Errorf("throttle: %v", err)
	}
}

func TestLambdaRuntime(t *testing.T) {
	f := newFixture(t)
	f.be.gw.Set([]*gateway.Function{
		f.function("fn", true, 5*time.Second, pool.Options{}),
		f.function("initfail", true, 5*time.Second, pool.Options{}),
	})
	_, srv := f.serve(invokeapi.Options{})
	c := client(srv.URL, keyID, secret)

	out := invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("fn:1"), Payload: []byte(`{"x":[1,2]}`)})
	var got struct {
		Event     json.RawMessage
		RequestID string
		ARN       string
	}
	if err := json.Unmarshal(out.Payload, &got); err != nil {
		t.Fatalf("%s: %v", out.Payload, err)
	}
	if string(got.Event) != `{"x":[1,2]}` || len(got.RequestID) != 36 || got.ARN != "arn:aws:lambda:us-east-1:000000000000:function:fn:1" {
		t.Errorf("handler saw %+v", got)
	}
	if rs := f.be.records(got.RequestID); len(rs) != 1 || rs[0].ErrorType != "" {
		t.Errorf("records: %+v", rs)
	}

	out = invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("fn"), Payload: []byte(`{"action":"fail"}`)})
	var doc struct{ ErrorType, ErrorMessage string }
	_ = json.Unmarshal(out.Payload, &doc)
	if out.StatusCode != 200 || aws.ToString(out.FunctionError) != "Unhandled" || doc.ErrorMessage != "handler said no" {
		t.Errorf("handler error: %d %v %s", out.StatusCode, out.FunctionError, out.Payload)
	}

	// Init failures are the function's errors too, as in Lambda.
	out = invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("initfail")})
	doc = struct{ ErrorType, ErrorMessage string }{}
	_ = json.Unmarshal(out.Payload, &doc)
	if out.StatusCode != 200 || aws.ToString(out.FunctionError) != "Unhandled" || !strings.HasPrefix(doc.ErrorType, "Runtime.") ||
		!strings.Contains(doc.ErrorMessage, "exit status 3") {
		t.Errorf("init failure: %d %v %s", out.StatusCode, out.FunctionError, out.Payload)
	}
}

// waitAsync polls the queue until the request's event reaches status.
func waitAsync(t *testing.T, s *store.Store, reqID, status string) store.AsyncItem {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		it, err := s.AsyncByRequest(context.Background(), reqID)
		if err != nil {
			t.Fatal(err)
		}
		if it.Status == status {
			return it
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %s still %s after %d attempts (%s), want %s", reqID, it.Status, it.Attempts, it.LastError, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func requestID(t *testing.T, out *lambda.InvokeOutput) string {
	t.Helper()
	id, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if !ok || len(id) != 36 {
		t.Fatalf("no request id in the response: %q", id)
	}
	return id
}

func TestEventSurvivesRestart(t *testing.T) {
	f := newFixture(t)
	f.be.gw.Set([]*gateway.Function{f.function("web", false, 5*time.Second, pool.Options{})})
	ctx := context.Background()

	// First life: two events are queued but no worker runs; the first is
	// claimed and the server "crashes" while it runs.
	s := f.openStore()
	_, srv := f.serve(invokeapi.Options{Store: s})
	c := client(srv.URL, keyID, secret)
	var ids []string
	for i := range 2 {
		out := invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("web"), InvocationType: types.InvocationTypeEvent,
			Payload: fmt.Appendf(nil, `{"n":%d}`, i)})
		if out.StatusCode != 202 || len(out.Payload) != 0 || out.ExecutedVersion != nil {
			t.Fatalf("event: %+v", out)
		}
		ids = append(ids, requestID(t, out))
	}
	if n := f.be.count(); n != 0 {
		t.Fatalf("%d invocations ran without a worker", n)
	}
	claimed, ok, err := s.Claim(ctx, time.Now())
	if !ok || err != nil || claimed.RequestID != ids[0] || string(claimed.Payload) != `{"n":0}` {
		t.Fatalf("claim: %v %v %+v", ok, err, claimed)
	}
	srv.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Second life: both run; the interrupted attempt does not count as
	// one, but is said.
	s = f.openStore()
	defer s.Close()
	api, _ := f.serve(invokeapi.Options{Store: s})
	api.Start(ctx)
	defer api.Close(ctx)
	for i, id := range ids {
		got := waitAsync(t, s, id, store.AsyncSucceeded)
		if got.Attempts != 1 || got.Interrupted != 1-i || got.LastError != "" {
			t.Errorf("event %d: %d attempts, %d interrupted, last error %q", i, got.Attempts, got.Interrupted, got.LastError)
		}
		if rs := f.be.records(id); len(rs) != 1 || rs[0].Status != 200 || rs[0].Function != "web" {
			t.Errorf("event %d records: %+v", i, rs)
		}
	}
}

func TestEventRetriedThenFailed(t *testing.T) {
	f := newFixture(t)
	f.be.gw.Set([]*gateway.Function{
		f.function("web", false, 5*time.Second, pool.Options{}),
		f.function("fn", true, 5*time.Second, pool.Options{}),
	})
	ctx := context.Background()
	s := f.openStore()
	defer s.Close()
	api, srv := f.serve(invokeapi.Options{Store: s, RetryDelays: []time.Duration{20 * time.Millisecond, 40 * time.Millisecond}})
	api.Start(ctx)
	c := client(srv.URL, keyID, secret)

	for _, tc := range []struct{ fn, payload, lastError string }{
		{"web", `{"action":"exit"}`, "Runtime.ExitError"},  // the process dies
		{"web", `{"action":"fail"}`, "Function.HTTPError"}, // the app answers 500 on /events
		{"fn", `{"action":"fail"}`, "errorString"},         // the handler returns an error
	} {
		out := invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String(tc.fn), InvocationType: types.InvocationTypeEvent,
			Payload: []byte(tc.payload)})
		id := requestID(t, out)
		start := time.Now()
		got := waitAsync(t, s, id, store.AsyncFailed)
		if got.Attempts != 3 || !strings.Contains(got.LastError, tc.lastError) {
			t.Errorf("%s %s: %d attempts, last error %q", tc.fn, tc.payload, got.Attempts, got.LastError)
		}
		if d := time.Since(start); d < 60*time.Millisecond {
			t.Errorf("%s %s: 3 attempts in %v, under the retry delays", tc.fn, tc.payload, d)
		}
		rs := f.be.records(id)
		if len(rs) != 3 {
			t.Errorf("%s %s: %d records under one request id, want 3", tc.fn, tc.payload, len(rs))
		}
		for _, r := range rs {
			if r.ErrorType == "" {
				t.Errorf("%s %s: a failed attempt recorded without an error type: %+v", tc.fn, tc.payload, r)
			}
		}
	}
	if err := api.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// An invocation joins the caller's X-Ray trace, and the function is told it.
func TestTraceContextReachesTheFunction(t *testing.T) {
	f := newFixture(t)
	f.be.gw.Set([]*gateway.Function{f.function("web", false, 5*time.Second, pool.Options{})})
	_, srv := f.serve(invokeapi.Options{Auth: "none"})
	req, _ := http.NewRequest("POST", srv.URL+"/2015-03-31/functions/web/invocations", strings.NewReader(`{"n":1}`))
	req.Header.Set("X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct{ Traceparent string }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.Traceparent, "00-5759e988bd862e3fe1be46a994272793-") || !strings.HasSuffix(got.Traceparent, "-01") {
		t.Errorf("function got traceparent %q, want the caller's trace", got.Traceparent)
	}
}

// An Event that finds every instance busy is throttled: tried again after a
// backoff, without using an attempt, until it runs.
func TestEventThrottledUsesNoAttempt(t *testing.T) {
	f := newFixture(t)
	web := f.function("web", false, 10*time.Second, pool.Options{MaxInstances: 1})
	f.be.gw.Set([]*gateway.Function{web})
	f.be.events = map[string]invokeapi.EventConfig{"web": {MaxRetryAttempts: 0, MaxEventAge: time.Hour}}
	ctx := context.Background()
	s := f.openStore()
	defer s.Close()
	api, srv := f.serve(invokeapi.Options{Store: s, ThrottleBackoff: [2]time.Duration{20 * time.Millisecond, 80 * time.Millisecond}})
	api.Start(ctx)
	defer api.Close(ctx)
	c := client(srv.URL, keyID, secret)

	// Hold the only instance with a synchronous invocation.
	hold := filepath.Join(t.TempDir(), "release")
	done := make(chan struct{})
	go func() {
		defer close(done)
		invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("web"), Payload: fmt.Appendf(nil, `{"action":"hold","path":%q}`, hold)})
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ins := web.Pool.(*pool.Pool).Instances()
		if len(ins) == 1 && ins[0].State == pool.StateBusy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the holding invocation never started")
		}
	}
	out := invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("web"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"n":1}`)})
	id := requestID(t, out)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		it, err := s.AsyncByRequest(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if it.Throttles >= 2 {
			if it.Status == store.AsyncFailed || it.Attempts != 0 {
				t.Fatalf("a throttled event used an attempt: %+v", it)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("event not throttled twice: %+v", it)
		}
	}
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	<-done
	got := waitAsync(t, s, id, store.AsyncSucceeded)
	if got.Attempts != 1 || got.Throttles < 2 {
		t.Errorf("after the instance freed: %+v", got)
	}
}

// maximum_retry_attempts and maximum_event_age are the function's.
func TestEventRetriesAndAge(t *testing.T) {
	f := newFixture(t)
	f.be.gw.Set([]*gateway.Function{f.function("web", false, 5*time.Second, pool.Options{})})
	ctx := context.Background()
	s := f.openStore()
	defer s.Close()
	api, srv := f.serve(invokeapi.Options{Store: s, RetryDelays: []time.Duration{30 * time.Millisecond, time.Second}})
	api.Start(ctx)
	defer api.Close(ctx)
	c := client(srv.URL, keyID, secret)
	send := func() string {
		out := invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("web"), InvocationType: types.InvocationTypeEvent,
			Payload: []byte(`{"action":"fail"}`)})
		return requestID(t, out)
	}
	for _, retries := range []int{0, 1} {
		f.be.mu.Lock()
		f.be.events = map[string]invokeapi.EventConfig{"web": {MaxRetryAttempts: retries, MaxEventAge: time.Hour}}
		f.be.mu.Unlock()
		got := waitAsync(t, s, send(), store.AsyncFailed)
		if got.Attempts != retries+1 || !strings.Contains(got.LastError, "Function.HTTPError") || string(got.Payload) != `{"action":"fail"}` {
			t.Errorf("maximum_retry_attempts %d: %+v", retries, got)
		}
	}
	// Its second retry would come after its maximum age: given up then,
	// saying so (or, on a machine so loaded the first retry starts late,
	// given up as too old when it does).
	f.be.mu.Lock()
	f.be.events = map[string]invokeapi.EventConfig{"web": {MaxRetryAttempts: 2, MaxEventAge: 300 * time.Millisecond}}
	f.be.mu.Unlock()
	got := waitAsync(t, s, send(), store.AsyncFailed)
	if got.Attempts > 2 || !strings.Contains(got.LastError, "maximum_event_age of 300ms") {
		t.Errorf("maximum_event_age: %+v", got)
	}
}

// An Event accepted for a version a deploy has since replaced runs on its
// successor ($LATEST semantics), and its record says which version ran.
func TestEventOutlivesItsVersion(t *testing.T) {
	f := newFixture(t)
	f.be.gw.Set([]*gateway.Function{f.function("web", false, 5*time.Second, pool.Options{})})
	ctx := context.Background()
	s := f.openStore()
	defer s.Close()
	api, srv := f.serve(invokeapi.Options{Store: s})
	c := client(srv.URL, keyID, secret)
	out := invoke(t, c, &lambda.InvokeInput{FunctionName: aws.String("web"), Qualifier: aws.String("1"),
		InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"n":1}`)})
	id := requestID(t, out)
	// A deploy replaces version 1 before any worker runs.
	v2 := f.function("web", false, 5*time.Second, pool.Options{})
	v2.Version = "2"
	f.be.gw.Set([]*gateway.Function{v2})
	api.Start(ctx)
	defer api.Close(ctx)
	got := waitAsync(t, s, id, store.AsyncSucceeded)
	if got.Version != "1" || got.Qualifier != "1" {
		t.Errorf("event: %+v", got)
	}
	if rs := f.be.records(id); len(rs) != 1 || rs[0].Version != "2" {
		t.Errorf("records: %+v", rs)
	}
}
