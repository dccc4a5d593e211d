package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/stokehq/stoke/internal/config"
	wsgirt "github.com/stokehq/stoke/internal/runtime/wsgi"
)

// checkImports imports every python-wsgi function's app with its
// interpreter, as an instance would, and reports on w. It returns how many
// did not import; a check that could not run counts as one.
func checkImports(ctx context.Context, cfg *config.Config, w io.Writer) int {
	if ctx == nil {
		ctx = context.Background()
	}
	names := make([]string, 0, len(cfg.Functions))
	for n, f := range cfg.Functions {
		if f.Runtime == "python-wsgi" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	failed := 0
	for _, n := range names {
		f := cfg.Functions[n]
		res, err := wsgirt.Check(ctx, f, cfg.Region)
		switch {
		case err != nil:
			failed++
			fmt.Fprintf(w, "\nwarning: %s: could not check that the app imports: %v\n", n, err)
		case res.ImportError != nil:
			failed++
			fmt.Fprintf(w, "\nwarning: %s: the app does not import with %s:\n  %s: %s\n%s\n", n, res.Python, res.ImportError.Type,
				res.ImportError.Message, indent(res.ImportError.Traceback, "    "))
			fmt.Fprintf(w, "  Point python: (stoke import --python) at the interpreter that has the app's packages (a venv's bin/python), or install them for %s.\n", res.Python.Executable)
		default:
			what := "handler " + f.Python.Handler
			if f.Python.Handler == "" {
				what = "Django settings " + f.Python.DjangoSettings
			}
			fmt.Fprintf(w, "\n%s: %s imports with %s.\n", n, what, res.Python)
		}
	}
	return failed
}

func indent(s, by string) string {
	if s == "" {
		return ""
	}
	return by + strings.ReplaceAll(s, "\n", "\n"+by)
}
