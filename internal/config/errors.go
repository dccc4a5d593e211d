package config

import (
	"fmt"
	"strings"
)

// Error is one problem in a config file, located by file, line and key path.
type Error struct {
	File string
	Line int    // 0 when the problem has no line (e.g. an unreadable encoding)
	Key  string // dotted key path, e.g. functions.hello.memory; empty for the whole file
	Msg  string // what is wrong and what is allowed
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one config file, in file order. Parse
// returns all of them at once so a user fixes the file in one pass.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}
