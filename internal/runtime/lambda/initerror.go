package lambdart

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/stokehq/stoke/internal/runtime"
)

// initError is POST /runtime/init/error: the bootstrap could not
// initialise (a missing handler, a failed import). Start then fails with
// the type and message it posted.
func (in *Instance) initError(w http.ResponseWriter, r *http.Request) {
	in.mu.Lock()
	s := in.state
	in.mu.Unlock()
	if s != stateStarted {
		renderForbidden(w, s, "InitError")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return
	}
	var doc errorDoc
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &doc) == nil {
		msg = doc.ErrorMessage
	}
	typ := r.Header.Get(hdrErrorType)
	if typ == "" {
		typ = doc.ErrorType
	}
	if typ == "" {
		typ = "Runtime.InitError"
	}
	in.mu.Lock()
	if in.state != stateStarted {
		s := in.state
		in.mu.Unlock()
		renderForbidden(w, s, "InitError")
		return
	}
	in.state = stateInitFailed
	in.initErr = &runtime.Error{Type: typ, Message: msg, Status: http.StatusBadGateway}
	close(in.initFailed)
	in.mu.Unlock()
	renderAccepted(w)
}
