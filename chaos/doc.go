// Package chaos holds Stoke's chaos suite: go tests that run the real stoke
// binary with real functions (aws-lambda-go, HTTP, python-wsgi) and break
// things on purpose — kill -9 an instance or Stoke itself, hang, fork and
// memory bombs, crash loops, overload, a full disk — then check that
// nothing was lost and nothing was blamed on the wrong request.
// docs/RELIABILITY.md has the figures and the command for each.
package chaos
