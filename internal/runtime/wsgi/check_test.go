package wsgirt

import (
	"context"
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
