package config

import "regexp"

var (
	pyDottedRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
	// A module file may be named what an identifier may not (sleep-tracker.py):
	// importlib and __import__ take such names, and Zappa's handler does.
	moduleRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_][A-Za-z0-9_-]*)*$`)
	hostRe   = regexp.MustCompile(`^([A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)
)

// ValidPythonName says whether s is a dotted Python name (mysite.settings,
// or a single identifier), as handler and django_settings take; zappa
// checks the names it writes with it. Lambda's own name rules are in
// internal/lambdaspec.
func ValidPythonName(s string) bool { return pyDottedRe.MatchString(s) }

// ValidModulePath says whether s names a module the shim can import: dotted
// names whose parts may also hold '-' or start with a digit, as files can
// (a handler's module part; the callable must be a Python name).
func ValidModulePath(s string) bool { return moduleRe.MatchString(s) }

// validHost says whether s can be an HTTP Host header: a name or an
// address, optionally with a port.
func validHost(s string) bool { return len(s) <= 253 && hostRe.MatchString(s) }
