// Package invokeapi serves AWS Lambda's Invoke API
// (POST /2015-03-31/functions/{FunctionName}/invocations) on the gateway
// listener, so the AWS SDKs and CLI can invoke Stoke functions: SigV4
// authentication, the RequestResponse, Event and DryRun invocation types,
// log tails, and Lambda's error bodies and status codes byte for byte where
// clients look at them. Event invocations are queued in SQLite and run by a
// small pool of workers with Lambda's retry policy.
//
// Every invocation goes through the gateway's Run, so timeouts, throttling
// and records are the same as for HTTP routes.
package invokeapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/stokehq/stoke/internal/lambdaspec"
	"github.com/stokehq/stoke/internal/trace"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/gateway"
	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/runtime"
)

const maxLogTail = 4 << 10 // X-Amz-Log-Result

// Pattern is where the server mounts Handler.
const Pattern = "POST /2015-03-31/functions/{FunctionName}/invocations"

// Backend is what the API needs of the server.
type Backend interface {
	// Run is gateway.Gateway.Run: acquire an instance, run Do within the
	// timeouts, record.
	Run(ctx context.Context, c gateway.Call) gateway.Outcome
	// Lookup says whether a function exists and its current version.
	Lookup(name string) (version string, ok bool)
	// Tail returns the function's log lines of one request (START..REPORT),
	// for X-Amz-Log-Type: Tail. It is called after Run returned, so the
	// REPORT line must be available by then.
	Tail(ctx context.Context, function, requestID string) []string
}

// Options configures the API.
type Options struct {
	Region, AccountID string // in ARNs and the SigV4 credential scope
	Auth              string // "sigv4" (default) or "none"
	Credentials       []config.Credential
	Store             Queue // the Event queue (queue.go); without it Event invocations get 500
	Logger            *slog.Logger
	// RetryDelays[i] is the wait after failed attempt i+1 (the last one
	// repeats); default 1m, 2m, Lambda's. How many retries an event gets
	// is its function's maximum_retry_attempts (EventConfigs).
	RetryDelays []time.Duration
	// ThrottleBackoff bounds the wait before a throttled event is tried
	// again: it doubles from the first to the second; default 1 s to
	// 5 min, Lambda's.
	ThrottleBackoff [2]time.Duration
	Workers         int // Event workers; default 2
	// Now is the clock SigV4 dates are checked against; default time.Now.
	Now func() time.Time
}

// API serves the Invoke API. Create it with New.
type API struct {
	b    Backend
	o    Options
	log  *slog.Logger
	auth *authenticator // nil when Auth is "none"

	wake chan struct{} // an Event was queued

	mu      sync.Mutex
	stop    context.CancelFunc // stops workers from claiming
	hard    context.CancelFunc // cancels invocations in flight
	workers sync.WaitGroup
}

// New makes an API for b.
func New(b Backend, o Options) *API {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.AccountID == "" {
		o.AccountID = "000000000000"
	}
	if o.ThrottleBackoff[0] <= 0 {
		o.ThrottleBackoff[0] = time.Second
	}
	if o.ThrottleBackoff[1] < o.ThrottleBackoff[0] {
		o.ThrottleBackoff[1] = max(5*time.Minute, o.ThrottleBackoff[0])
	}
	if len(o.RetryDelays) == 0 {
		o.RetryDelays = []time.Duration{time.Minute, 2 * time.Minute}
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &API{b: b, o: o, log: o.Logger.With("component", "invokeapi"), wake: make(chan struct{}, 1)}
	if o.Auth != "none" {
		secrets := make(map[string]string, len(o.Credentials))
		for _, c := range o.Credentials {
			secrets[c.AccessKeyID] = c.SecretAccessKey
		}
		a.auth = &authenticator{region: o.Region, secrets: secrets, now: o.Now, signer: v4.NewSigner()}
	}
	return a
}

// bodyKind is which of AWS's error body shapes an error uses.
type bodyKind int

const (
	bodyUser     bodyKind = iota // {"Type":"User","message":...}: Lambda's client errors
	bodyService                  // {"Type":"Service","message":...}
	bodyMessage                  // {"message":...}: the authentication layer's
	bodyThrottle                 // Lambda's 429
)

// apiError is an error answer of the Invoke API.
type apiError struct {
	status int
	typ    string // x-amzn-ErrorType, which the SDKs turn into the error code
	msg    string
	body   bodyKind
	// notRun: no instance took the invocation (throttled, or the gateway
	// timed out waiting for one); an Event is retried without using an
	// attempt.
	notRun bool
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

func userError(status int, typ, msg string) *apiError {
	return &apiError{status: status, typ: typ, msg: msg, body: bodyUser}
}

func writeError(w http.ResponseWriter, e *apiError) {
	type typed struct {
		Type    string `json:"Type"`
		Message string `json:"message"`
	}
	var v any
	switch e.body {
	case bodyUser:
		v = typed{"User", e.msg}
	case bodyService:
		v = typed{"Service", e.msg}
	case bodyThrottle:
		v = struct {
			Reason string `json:"Reason"`
			typed
		}{"ConcurrentInvocationLimitExceeded", typed{"User", e.msg}}
	default:
		v = struct {
			Message string `json:"message"`
		}{e.msg}
	}
	b, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-Errortype", e.typ)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if e.body == bodyThrottle {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

// call is one invocation, synchronous or an attempt of an Event.
type call struct {
	t             lambdaspec.FunctionRef
	arn           string // as the function sees it (with the qualifier it was invoked with)
	reqID         string
	payload       []byte
	traceID       string        // X-Ray form, as stored for Event invocations
	trace         trace.Context // set by invoke: the trace the invocation joins
	clientContext string
	path          string // for the record
}

// result is a completed invocation: the function answered, maybe with an error.
type result struct {
	payload       []byte
	functionError string // X-Amz-Function-Error: "" or "Unhandled"
	errorType     string
	version       string
}

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	reqID := record.NewRequestID()
	w.Header().Set("X-Amzn-Requestid", reqID)
	if e := a.handle(w, r, reqID); e != nil {
		if e.status >= 500 {
			a.log.Warn("invoke failed", "request_id", reqID, "function", r.PathValue("FunctionName"), "err", e)
		}
		writeError(w, e)
	}
}

// handle answers one Invoke call, or returns the error to answer with.
func (a *API) handle(w http.ResponseWriter, r *http.Request, reqID string) *apiError {
	ctx := r.Context()
	var ah authHeader
	if a.auth != nil {
		var e *apiError
		if ah, e = a.auth.check(r); e != nil {
			return e
		}
	}
	// A body over the limit is refused before the signature over it is
	// checked: hashing it would mean reading it all.
	tooLarge := userError(http.StatusRequestEntityTooLarge, "RequestTooLargeException",
		fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", lambdaspec.MaxSyncPayload))
	if r.ContentLength > lambdaspec.MaxSyncPayload {
		return tooLarge
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, lambdaspec.MaxSyncPayload+1))
	if err != nil {
		return userError(http.StatusBadRequest, "InvalidRequestContentException", "Could not read request body: "+err.Error())
	}
	if len(payload) > lambdaspec.MaxSyncPayload {
		return tooLarge
	}
	if a.auth != nil {
		if e := a.auth.verify(ctx, r, ah, payload); e != nil {
			return e
		}
	}

	t, err := lambdaspec.ParseFunctionRef(r.PathValue("FunctionName"), r.URL.Query().Get("Qualifier"))
	if err != nil {
		var ne *lambdaspec.NameError
		errors.As(err, &ne)
		return userError(http.StatusBadRequest, ne.Type, ne.Message)
	}
	invType := r.Header.Get("X-Amz-Invocation-Type")
	switch invType {
	case "":
		invType = "RequestResponse"
	case "RequestResponse", "Event", "DryRun":
	default:
		return userError(http.StatusBadRequest, "InvalidParameterValueException",
			fmt.Sprintf("Unsupported invocation type %q: use RequestResponse, Event or DryRun.", invType))
	}
	logType := r.Header.Get("X-Amz-Log-Type")
	if logType != "" && logType != "None" && logType != "Tail" {
		return userError(http.StatusBadRequest, "InvalidParameterValueException",
			fmt.Sprintf("Unsupported log type %q: use None or Tail.", logType))
	}
	if e := a.exists(t); e != nil {
		return e
	}
	h := w.Header()
	if invType == "DryRun" {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if len(payload) == 0 {
		payload = []byte("{}") // as Lambda passes an empty payload: `aws lambda invoke` without --payload
	}
	if !json.Valid(payload) {
		var v any
		err := json.Unmarshal(payload, &v)
		return userError(http.StatusBadRequest, "InvalidRequestContentException", "Could not parse request body into json: "+err.Error())
	}
	traceID := r.Header.Get("X-Amzn-Trace-Id")
	if traceID == "" {
		traceID = newTraceID(time.Now())
	}

	if invType == "Event" {
		if len(payload) > lambdaspec.MaxAsyncPayload {
			return userError(http.StatusRequestEntityTooLarge, "RequestTooLargeException",
				fmt.Sprintf("Request must be smaller than %d bytes for the Event invocation type", lambdaspec.MaxAsyncPayload))
		}
		if e := a.enqueue(ctx, t, reqID, traceID, payload); e != nil {
			return e
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}

	res, e := a.invoke(ctx, call{
		t: t, arn: t.ARN(a.o.Region, a.o.AccountID), reqID: reqID, payload: payload, traceID: traceID,
		trace: trace.FromHeaders(r.Header), clientContext: r.Header.Get("X-Amz-Client-Context"), path: r.URL.Path,
	})
	if e != nil {
		return e
	}
	h.Set("X-Amz-Executed-Version", res.version)
	if res.functionError != "" {
		h.Set("X-Amz-Function-Error", res.functionError)
	}
	if logType == "Tail" {
		h.Set("X-Amz-Log-Result", tail(a.b.Tail(ctx, t.Name, reqID)))
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(res.payload)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.payload)
	return nil
}

// exists checks that t names a deployed function in this region and
// account, at $LATEST or its current version: Stoke runs only the current
// version, so older qualifiers are reported missing as Lambda would an
// unknown one.
func (a *API) exists(t lambdaspec.FunctionRef) *apiError {
	version, ok := a.b.Lookup(t.Name)
	ok = ok && (t.Region == "" || t.Region == a.o.Region) && (t.Account == "" || t.Account == a.o.AccountID) &&
		(t.Qualifier == "" || t.Qualifier == "$LATEST" || t.Qualifier == version)
	if !ok {
		return a.notFound(t)
	}
	return nil
}

func (a *API) notFound(t lambdaspec.FunctionRef) *apiError {
	region, account := a.o.Region, a.o.AccountID
	if t.Region != "" {
		region = t.Region
	}
	if t.Account != "" {
		account = t.Account
	}
	return userError(http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+t.ARN(region, account))
}

// invoke runs one invocation through the backend and turns its outcome
// into Lambda's answer: a result (function errors included, as Lambda
// answers them with 200), or an API error.
func (a *API) invoke(ctx context.Context, c call) (result, *apiError) {
	var res *runtime.Result
	var rec *record.Record
	// The invocation joins the caller's trace (traceparent or
	// X-Amzn-Trace-Id; for Event invocations the header stored with it), and
	// the function is told the ids of the invoke span that Run records.
	if !c.trace.Valid() {
		if tc, ok := trace.ParseXRay(c.traceID); ok {
			c.trace = tc
		} else {
			c.trace = trace.NewContext()
		}
	}
	c.traceID = c.trace.XRay()
	out := a.b.Run(ctx, gateway.Call{
		Function: c.t.Name, RequestID: c.reqID, Method: http.MethodPost, Path: c.path, Trace: c.trace,
		Ready: func(r *record.Record) { rec = r },
		Do: func(ctx context.Context, inst runtime.Instance) error {
			r, err := a.runOn(ctx, inst, c)
			if err != nil {
				return err
			}
			res = r
			if r.FunctionError != "" && rec != nil {
				// Run only records errors Do returns; a handled function
				// error is an answer, but the record should still show it.
				rec.ErrorType = r.ErrorType
				if rec.ErrorType == "" {
					rec.ErrorType = r.FunctionError
				}
			}
			return nil
		},
	})
	version := ""
	if out.Record != nil {
		version = out.Record.Version
	}
	if out.Err == nil {
		return result{payload: res.Payload, functionError: res.FunctionError, errorType: res.ErrorType, version: version}, nil
	}
	switch {
	case out.Throttled:
		return result{}, &apiError{status: http.StatusTooManyRequests, typ: "TooManyRequestsException", msg: "Rate Exceeded.", body: bodyThrottle, notRun: true}
	case out.ErrorType == "InvalidRequestContentException":
		// The event describes a request no app may be sent (control
		// characters in its method, URL or headers): the caller's mistake,
		// refused before it reached the instance.
		return result{}, userError(http.StatusBadRequest, out.ErrorType, out.Message)
	case out.Record == nil && out.Status == http.StatusNotFound:
		// Removed by a deploy since the lookup.
		return result{}, a.notFound(c.t)
	case out.ErrorType == "Sandbox.Timedout":
		// Lambda's timeout answer: 200, a function error, and this body.
		doc, _ := json.Marshal(struct {
			ErrorMessage string `json:"errorMessage"`
		}{time.Now().UTC().Format("2006-01-02T15:04:05.000Z") + " " + c.reqID + " " + out.Message})
		return result{payload: doc, functionError: "Unhandled", errorType: out.ErrorType, version: version}, nil
	case strings.HasPrefix(out.ErrorType, "Runtime."):
		// Exit, out of memory, init failure: Lambda reports these as the
		// function's error with a body saying what happened.
		msg := out.Message
		if !strings.HasPrefix(msg, "RequestId: ") { // the runtime may have said it
			msg = "RequestId: " + c.reqID + " Error: " + msg
		}
		return result{payload: errorDoc(out.ErrorType, msg),
			functionError: "Unhandled", errorType: out.ErrorType, version: version}, nil
	}
	return result{}, &apiError{status: http.StatusInternalServerError, typ: "ServiceException",
		msg: fmt.Sprintf("%s: %s", out.ErrorType, out.Message), body: bodyService, notRun: out.ErrorType == "Gateway.Timeout" && !ran(out)}
}

// ran says whether an instance took the invocation.
func ran(out gateway.Outcome) bool { return out.Record != nil && out.Record.InstanceID != "" }

// runOn runs c on one instance: directly if it takes events, else as an
// HTTP request (see invokeHTTP).
func (a *API) runOn(ctx context.Context, inst runtime.Instance, c call) (*runtime.Result, error) {
	if ei, ok := inst.(runtime.EventInstance); ok {
		deadline, _ := ctx.Deadline()
		return ei.InvokeEvent(ctx, &runtime.Invocation{
			RequestID: c.reqID, Payload: c.payload, Deadline: deadline, FunctionARN: c.arn,
			TraceID: c.traceID, ClientContext: c.clientContext,
		})
	}
	return invokeHTTP(ctx, inst, c)
}

// errorDoc is a function error document as Lambda's runtimes write it.
func errorDoc(typ, msg string) []byte {
	b, _ := json.Marshal(struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}{typ, msg})
	return b
}

// tail is X-Amz-Log-Result: the last 4 KB of the invocation's log, base64.
func tail(lines []string) string {
	s := strings.Join(lines, "\n")
	if s != "" {
		s += "\n"
	}
	if len(s) > maxLogTail {
		s = s[len(s)-maxLogTail:]
	}
	return base64.StdEncoding.EncodeToString([]byte(s))
}

// newTraceID makes an X-Ray trace header for an invocation that came
// without one, as Lambda does.
func newTraceID(now time.Time) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("Root=1-%08x-%s;Sampled=0", now.Unix(), hex.EncodeToString(b[:]))
}
