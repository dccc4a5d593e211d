package wsgirt

import (
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

// PythonInfo names the interpreter that runs (or failed to run) an app, as
// the shim reports it: every import error and every deploy says which
// Python it was, since "No module named 'django'" means nothing without it.
type PythonInfo struct {
	Executable string            `json:"executable"`
	Version    string            `json:"version"`
	Frameworks map[string]string `json:"frameworks"` // distribution → version, of those imported
}

// String is "/usr/bin/python3 3.13.5 (Django 5.2.3, djangorestframework 3.16.0)".
func (p PythonInfo) String() string {
	if p.Executable == "" && p.Version == "" {
		return "unknown"
	}
	s := strings.TrimSpace(p.Executable + " " + p.Version)
	if len(p.Frameworks) == 0 {
		return s
	}
	names := make([]string, 0, len(p.Frameworks))
	for n := range p.Frameworks {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %s", n, p.Frameworks[n])
	}
	return s + " (" + strings.Join(parts, ", ") + ")"
}

// warmupAdvice says what to change when the warm-up request got a 4xx.
func warmupAdvice(status int) string {
	if status == 400 {
		return "set readiness.host to a host the app accepts (for Django, one of ALLOWED_HOSTS)"
	}
	return "set readiness.path to a path the app serves (and readiness.host if it checks the host)"
}

// interpreter names the configured interpreter and the file it resolves
// to, for the errors that come before the shim could say which Python it is.
func (rt *Runtime) interpreter() string {
	py := rt.o.Function.Python.Interpreter
	if p, err := exec.LookPath(py); err == nil && p != py {
		return py + " (" + p + ")"
	}
	return py
}
