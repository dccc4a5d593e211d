package lambdart

import (
	"encoding/json"
	"net/http"

	"github.com/stokehq/stoke/internal/lambdaspec"
	"github.com/stokehq/stoke/internal/runtime"
)

// invocationError is POST /runtime/invocation/{id}/error: the handler
// returned an error or panicked. The body is Lambda's error document and
// becomes the invocation's payload as it is; its type comes from the
// Lambda-Runtime-Function-Error-Type header, else from the document.
func (in *Instance) invocationError(w http.ResponseWriter, r *http.Request) {
	c, ok := in.answering(w, r, "InvocationErrorResponse")
	if !ok {
		return
	}
	body, n, err := readPayload(r)
	if err != nil {
		in.rt.o.Logger.Debug("read invocation error", "instance", in.id, "err", err)
		return
	}
	var doc errorDoc
	docErr := json.Unmarshal(body, &doc)
	typ := r.Header.Get(hdrErrorType)
	if typ == "" {
		typ = doc.ErrorType
	}
	if typ == "" {
		typ = "Unhandled"
	}
	if n > lambdaspec.MaxSyncPayload || docErr != nil {
		// Lambda builds the document from the header when the body is unusable.
		body = errorJSON(typ, string(truncate(body, 1024)))
	}
	if !in.answer(c, &runtime.Result{Payload: body, FunctionError: "Unhandled", ErrorType: typ}, connOf(w)) {
		renderForbidden(w, stateResponded, "InvocationErrorResponse")
		return
	}
	renderAccepted(w)
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
