package wsgirt

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// An interpreter that dies before the shim can say what it is: the error
// still names it, template or plain instance.
func TestInitErrorsNameTheInterpreter(t *testing.T) {
	for _, snapshot := range []bool{true, false} {
		t.Run(fmt.Sprintf("snapshot=%v", snapshot), func(t *testing.T) {
			f := testFunction(t, "app:app", snapshot)
			f.Python.Interpreter = "/bin/false"
			rt := newRuntime(t, f, nil)
			var err error
			if snapshot {
				err = rt.Prepare(context.Background())
			} else {
				_, err = rt.Start(context.Background(), "plain")
			}
			if err == nil || !strings.Contains(err.Error(), "python: /bin/false") {
				t.Errorf("%v", err)
			}
		})
	}
}

func TestPythonInfoString(t *testing.T) {
	p := PythonInfo{Executable: "/usr/bin/python3", Version: "3.11.2", Frameworks: map[string]string{"Flask": "3.0.0", "Django": "5.2"}}
	if got := p.String(); got != "/usr/bin/python3 3.11.2 (Django 5.2, Flask 3.0.0)" {
		t.Errorf("String() = %q", got)
	}
	if got := (PythonInfo{}).String(); got != "unknown" {
		t.Errorf("empty: %q", got)
	}
}
