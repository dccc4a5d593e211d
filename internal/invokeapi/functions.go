package invokeapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/stokehq/stoke/internal/lambdaspec"
)

// The read-only operations real clients call around Invoke: ListFunctions
// (`aws lambda list-functions`), GetFunction and GetFunctionConfiguration
// (SDK waiters such as FunctionActiveV2, tools that look a function up
// before they invoke it), in Lambda's shapes.

// Catalog lists the deployed functions. The server's Backend implements it;
// without it the read-only operations list nothing.
type Catalog interface {
	Functions() []Function
}

// Function is what the read-only operations say about a deployed function.
type Function struct {
	Name     string
	Runtime  string // Lambda's runtime identifier, e.g. provided.al2023 or python3.11
	Handler  string
	Version  string
	MemoryMB int
	// EphemeralStorageMB is the size of an instance's /tmp (0: Lambda's
	// default, 512).
	EphemeralStorageMB int
	Timeout            time.Duration
	Description        string
	Modified           time.Time // when this version was deployed
	CodeSha256         string    // base64, as Lambda writes it
}

// functionConfiguration is Lambda's FunctionConfiguration, as much of it as
// Stoke can fill truthfully. Environment is left out on purpose: Lambda
// returns a function's variables to any authorised caller, and on Stoke that
// would hand secrets to whoever may invoke (the Invoke API can run without
// SigV4 on loopback).
type functionConfiguration struct {
	FunctionName     string         `json:"FunctionName"`
	FunctionArn      string         `json:"FunctionArn"`
	Runtime          string         `json:"Runtime,omitempty"`
	Role             string         `json:"Role"`
	Handler          string         `json:"Handler,omitempty"`
	CodeSize         int64          `json:"CodeSize"`
	Description      string         `json:"Description"`
	Timeout          int            `json:"Timeout"`
	MemorySize       int            `json:"MemorySize"`
	LastModified     string         `json:"LastModified"`
	CodeSha256       string         `json:"CodeSha256"`
	Version          string         `json:"Version"`
	TracingConfig    map[string]any `json:"TracingConfig"`
	RevisionId       string         `json:"RevisionId"`
	State            string         `json:"State"`
	LastUpdateStatus string         `json:"LastUpdateStatus"`
	PackageType      string         `json:"PackageType"`
	Architectures    []string       `json:"Architectures"`
	EphemeralStorage map[string]any `json:"EphemeralStorage"`
	SnapStart        map[string]any `json:"SnapStart"`
	LoggingConfig    map[string]any `json:"LoggingConfig"`
}

// lambdaTime is LastModified's format: 2019-08-14T22:26:11.234+0000.
const lambdaTime = "2006-01-02T15:04:05.000-0700"

func (a *API) configuration(f Function, qualifier string) functionConfiguration {
	ref := lambdaspec.FunctionRef{Name: f.Name}
	version := "$LATEST"
	if qualifier != "" && qualifier != "$LATEST" {
		version = qualifier
		ref.Qualifier = qualifier
	}
	tmpMB := f.EphemeralStorageMB
	if tmpMB == 0 {
		tmpMB = lambdaspec.DefaultEphemeralStorageMB
	}
	return functionConfiguration{
		FunctionName: f.Name, FunctionArn: ref.ARN(a.o.Region, a.o.AccountID), Runtime: f.Runtime,
		Role: "arn:aws:iam::" + a.o.AccountID + ":role/stoke", Handler: f.Handler, Description: f.Description,
		Timeout: int((f.Timeout + time.Second - 1) / time.Second), MemorySize: f.MemoryMB,
		LastModified: f.Modified.UTC().Format(lambdaTime), CodeSha256: f.CodeSha256, Version: version,
		TracingConfig: map[string]any{"Mode": "PassThrough"}, RevisionId: f.Name + "-" + f.Version,
		State: "Active", LastUpdateStatus: "Successful", PackageType: "Zip", Architectures: []string{"x86_64"},
		EphemeralStorage: map[string]any{"Size": tmpMB}, SnapStart: map[string]any{"ApplyOn": "None", "OptimizationStatus": "Off"},
		LoggingConfig: map[string]any{"LogFormat": "Text", "LogGroup": "/aws/lambda/" + f.Name},
	}
}

func (a *API) functions() []Function {
	c, ok := a.b.(Catalog)
	if !ok {
		return nil
	}
	fns := c.Functions()
	sort.Slice(fns, func(i, j int) bool { return fns[i].Name < fns[j].Name })
	return fns
}

// readOnly authenticates a read-only call (SigV4 over its empty body).
func (a *API) readOnly(r *http.Request) *apiError {
	if a.auth == nil {
		return nil
	}
	ah, e := a.auth.check(r)
	if e != nil {
		return e
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return userError(http.StatusBadRequest, "InvalidRequestContentException", "Could not read request body: "+err.Error())
	}
	return a.auth.verify(r.Context(), r, ah, body)
}

// listFunctions is ListFunctions: GET /2015-03-31/functions/, paged with
// Marker and MaxItems (1 to 10000, default 50).
func (a *API) listFunctions(w http.ResponseWriter, r *http.Request) {
	if e := a.readOnly(r); e != nil {
		writeError(w, e)
		return
	}
	q := r.URL.Query()
	max := 50
	if s := q.Get("MaxItems"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, userError(http.StatusBadRequest, "InvalidParameterValueException",
				"1 validation error detected: Value '"+s+"' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 10000"))
			return
		}
		max = n
	}
	after := ""
	if m := q.Get("Marker"); m != "" {
		b, err := base64.RawURLEncoding.DecodeString(m)
		if err != nil {
			writeError(w, userError(http.StatusBadRequest, "InvalidParameterValueException", "Invalid Marker: "+m))
			return
		}
		after = string(b)
	}
	out := struct {
		Functions  []functionConfiguration `json:"Functions"`
		NextMarker *string                 `json:"NextMarker"`
	}{Functions: []functionConfiguration{}}
	for _, f := range a.functions() {
		if f.Name <= after {
			continue
		}
		if len(out.Functions) == max {
			m := base64.RawURLEncoding.EncodeToString([]byte(out.Functions[max-1].FunctionName))
			out.NextMarker = &m
			break
		}
		out.Functions = append(out.Functions, a.configuration(f, ""))
	}
	writeJSONBody(w, out)
}

// lookup finds the function a GetFunction/GetFunctionConfiguration names,
// with Invoke's name and ARN rules; only $LATEST and the current version
// exist.
func (a *API) lookup(r *http.Request) (Function, string, *apiError) {
	t, err := lambdaspec.ParseFunctionRef(r.PathValue("FunctionName"), r.URL.Query().Get("Qualifier"))
	var ne *lambdaspec.NameError
	if errors.As(err, &ne) {
		return Function{}, "", userError(http.StatusBadRequest, ne.Type, ne.Message)
	}
	if e := a.exists(t); e != nil {
		return Function{}, "", e
	}
	for _, f := range a.functions() {
		if f.Name == t.Name {
			return f, t.Qualifier, nil
		}
	}
	return Function{}, "", a.notFound(t)
}

// getFunction is GetFunction: GET /2015-03-31/functions/{FunctionName}.
func (a *API) getFunction(w http.ResponseWriter, r *http.Request) {
	a.withFunction(w, r, func(c functionConfiguration) any {
		return struct {
			Configuration functionConfiguration `json:"Configuration"`
			Code          map[string]string     `json:"Code"`
			Tags          map[string]string     `json:"Tags"`
		}{c, map[string]string{"RepositoryType": "Local"}, map[string]string{}}
	})
}

// getFunctionConfiguration is GetFunctionConfiguration:
// GET /2015-03-31/functions/{FunctionName}/configuration.
func (a *API) getFunctionConfiguration(w http.ResponseWriter, r *http.Request) {
	a.withFunction(w, r, func(c functionConfiguration) any { return c })
}

// withFunction authenticates r, finds the function it names and answers
// with what body makes of its configuration.
func (a *API) withFunction(w http.ResponseWriter, r *http.Request, body func(functionConfiguration) any) {
	if e := a.readOnly(r); e != nil {
		writeError(w, e)
		return
	}
	f, qual, e := a.lookup(r)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSONBody(w, body(a.configuration(f, qual)))
}

func writeJSONBody(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
