package wsgirt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/stokehq/stoke/internal/config"
)

// CheckResult is what importing a function's app with its interpreter
// showed, before anything serves it.
type CheckResult struct {
	Python PythonInfo
	// ImportError is set when the app did not import: Lambda's error type
	// (Runtime.ImportModuleError, …), the message and the traceback.
	ImportError *ImportError
}

// ImportError is a failed import, as the shim reported it.
type ImportError struct {
	Type, Message string
	Traceback     string
}

func (e *ImportError) Error() string { return e.Type + ": " + e.Message }

// Check imports f's app exactly as an instance would (the same shim, cwd,
// environment and interpreter), without serving it, and says which
// interpreter it was. The app's import runs as the calling user, outside
// any sandbox: it is for `stoke check` and `stoke import`, run by the app's
// owner. An error means the check itself could not run (no interpreter, a
// crash before it reported); a failed import is CheckResult.ImportError.
func Check(ctx context.Context, f *config.Function, region string) (*CheckResult, error) {
	py := f.Python.Interpreter
	path, err := exec.LookPath(py)
	if err != nil {
		return nil, fmt.Errorf("python interpreter %q not found (%v); set python: to an interpreter that has the app's packages, e.g. venv/bin/python", py, err)
	}
	limit := f.InitTimeout
	if limit < 30*time.Second {
		limit = 30 * time.Second // an import on an idle machine, outside the memory-sized CPU quota
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", f.Name, err)
	}
	defer r.Close()
	rt := New(Options{Function: f, Region: region})
	cmd := exec.CommandContext(ctx, path, "-c", shimSource)
	cmd.Dir = f.Cwd
	cmd.Env = append(rt.env(f.Name+"-check", "check"), "STOKE_WSGI_REPORT_FD=3")
	cmd.ExtraFiles = []*os.File{w}
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 2 * time.Second // a child the app left behind must not hold the pipes open
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	w.Close()
	var report struct {
		OK     bool       `json:"ok"`
		Python PythonInfo `json:"python"`
		errorPayload
	}
	raw, _ := readAll(r, 4<<20)
	werr := cmd.Wait()
	if len(raw) == 0 || json.Unmarshal(raw, &report) != nil {
		why := "it exited before reporting"
		switch {
		case ctx.Err() != nil:
			why = fmt.Sprintf("the import did not finish within %s", limit)
		case werr != nil:
			why = werr.Error()
		}
		return nil, fmt.Errorf("importing %s's app with %s: %s; output: %s", f.Name, path, why, strings.TrimSpace(out.String()))
	}
	res := &CheckResult{Python: report.Python}
	if !report.OK {
		res.ImportError = &ImportError{Type: report.ErrorType, Message: report.ErrorMessage,
			Traceback: strings.TrimRight(strings.Join(report.StackTrace, ""), "\n")}
	}
	if res.Python.Executable == "" {
		res.Python = PythonInfo{Executable: path}
	}
	return res, nil
}

func readAll(r io.Reader, max int64) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(io.LimitReader(r, max))
	return b.Bytes(), err
}

// tailBuffer keeps the last 4 KB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = append(t.b[:0], t.b[len(t.b)-4096:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
