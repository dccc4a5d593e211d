package config

import "regexp"

var (
	pyDottedRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
	hostRe     = regexp.MustCompile(`^([A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)
)

// ValidPythonName says whether s is a dotted Python name (mysite.settings,
// or a single identifier), as handler and django_settings take; zappa
// checks the names it writes with it. Lambda's own name rules are in
// internal/lambdaspec.
func ValidPythonName(s string) bool { return pyDottedRe.MatchString(s) }

// validHost says whether s can be an HTTP Host header: a name or an
// address, optionally with a port.
func validHost(s string) bool { return len(s) <= 253 && hostRe.MatchString(s) }
