package config

import "regexp"

var pyDottedRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// ValidPythonName says whether s is a dotted Python name (mysite.settings,
// or a single identifier), as handler and django_settings take; zappa
// checks the names it writes with it. Lambda's own name rules are in
// internal/lambdaspec.
func ValidPythonName(s string) bool { return pyDottedRe.MatchString(s) }
