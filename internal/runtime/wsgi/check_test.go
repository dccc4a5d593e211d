package wsgirt

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	res, err := Check(context.Background(), djangoFunction(t, true), "")
	if err != nil || res.ImportError != nil {
		t.Fatalf("django example: %v %+v", err, res)
	}
	if res.Python.Executable != python || !strings.HasPrefix(res.Python.Version, "3.") || res.Python.Frameworks["Django"] == "" {
		t.Errorf("python %+v, want %s with Django", res.Python, python)
	}

	f := testFunction(t, "app:app", true)
	f.Env["APP_FAIL_IMPORT"] = "no database"
	res, err = Check(context.Background(), f, "")
	if err != nil || res.ImportError == nil {
		t.Fatalf("failing import: %v %+v", err, res)
	}
	if res.ImportError.Type != "Runtime.ImportModuleError" || !strings.Contains(res.ImportError.Message, "broken at import: no database") ||
		!strings.Contains(res.ImportError.Traceback, `app.py", line`) || res.Python.Executable != python {
		t.Errorf("import error %+v python %+v", res.ImportError, res.Python)
	}

	f.Python.Interpreter = "no-such-python3"
	if _, err := Check(context.Background(), f, ""); err == nil || !strings.Contains(err.Error(), `python interpreter "no-such-python3" not found`) {
		t.Errorf("missing interpreter: %v", err)
	}
}

// A module file named what Python names cannot be (Zappa projects have
// them: sleep-tracker.py) imports, as importlib and Zappa import it.
func TestCheckHyphenatedModule(t *testing.T) {
	f := testFunction(t, "sleep-tracker:app", true)
	f.Cwd = t.TempDir()
	app := "def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'zz']\n"
	if err := os.WriteFile(filepath.Join(f.Cwd, "sleep-tracker.py"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Check(context.Background(), f, "")
	if err != nil || res.ImportError != nil {
		t.Fatalf("sleep-tracker:app: %v %+v", err, res)
	}
	l := &logs{}
	rt := newRuntime(t, f, l)
	in := start(t, rt, "a")
	if w := invoke(t, in, "GET", "/", nil); w.Code != 200 || w.Body.String() != "zz" {
		t.Errorf("serving sleep-tracker:app: %d %q", w.Code, w.Body)
	}
}
