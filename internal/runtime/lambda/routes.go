package lambdart

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/stokehq/stoke/internal/lambdaspec"
)

// routes is the Runtime API, version 2018-06-01: one handler per endpoint,
// each in its own file.
func (in *Instance) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiBasePath+"/runtime/invocation/next", in.next)
	mux.HandleFunc("POST "+apiBasePath+"/runtime/invocation/{id}/response", in.response)
	mux.HandleFunc("POST "+apiBasePath+"/runtime/invocation/{id}/error", in.invocationError)
	mux.HandleFunc("POST "+apiBasePath+"/runtime/init/error", in.initError)
	return mux
}

// Header names of the Runtime API.
const (
	hdrRequestID       = "Lambda-Runtime-Aws-Request-Id"
	hdrDeadline        = "Lambda-Runtime-Deadline-Ms"
	hdrFunctionARN     = "Lambda-Runtime-Invoked-Function-Arn"
	hdrTraceID         = "Lambda-Runtime-Trace-Id"
	hdrClientContext   = "Lambda-Runtime-Client-Context"
	hdrCognitoIdentity = "Lambda-Runtime-Cognito-Identity"
	hdrErrorType       = "Lambda-Runtime-Function-Error-Type"
	// A streamed response that fails midway names its error in trailers.
	hdrErrorBody = "Lambda-Runtime-Function-Error-Body"
)

// errorDoc is Lambda's error document, both the Runtime API's own error
// bodies and what functions post to /error.
// Runtimes disagree on stackTrace's shape (strings, or aws-lambda-go's
// frame objects), so it is kept as it came.
type errorDoc struct {
	ErrorMessage string          `json:"errorMessage"`
	ErrorType    string          `json:"errorType"`
	StackTrace   json.RawMessage `json:"stackTrace,omitempty"`
}

var (
	jsonType = []string{"application/json"}
	accepted = []byte(`{"status":"OK"}` + "\n")
)

// renderAccepted is the 202 every successful post gets.
func renderAccepted(w http.ResponseWriter) {
	w.Header()["Content-Type"] = jsonType
	w.WriteHeader(http.StatusAccepted)
	w.Write(accepted)
}

func renderError(w http.ResponseWriter, status int, typ, msg string) {
	b, _ := json.Marshal(errorDoc{ErrorMessage: msg, ErrorType: typ})
	w.Header()["Content-Type"] = jsonType
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// renderForbidden answers a call the bootstrap's state does not allow, in
// the emulator's words.
func renderForbidden(w http.ResponseWriter, from state, to string) {
	renderError(w, http.StatusForbidden, "InvalidStateTransition",
		fmt.Sprintf("State transition from %s to %s failed for runtime. Error: State transition is not allowed",
			from.name(), to))
}

func renderInvalidRequestID(w http.ResponseWriter) {
	renderError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
}

func renderTooLarge(w http.ResponseWriter) {
	renderError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
		fmt.Sprintf("Exceeded maximum allowed payload size (%d bytes).", lambdaspec.MaxSyncPayload))
}
