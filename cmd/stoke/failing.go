package main

import (
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/stokehq/stoke/internal/admin"
)

// printFailing names, under `stoke ls`'s table, the functions whose
// instances cannot start, with the last error and when the next start is.
func printFailing(w io.Writer, fns []admin.FunctionInfo) {
	first := true
	for _, f := range fns {
		h := f.Health
		if !h.Failing {
			continue
		}
		if first {
			fmt.Fprintln(w)
			first = false
		}
		next := "now"
		if !h.RetryAt.IsZero() {
			next = "in " + time.Until(h.RetryAt).Round(time.Second).String()
		}
		fmt.Fprintf(w, "FAILING %s: %d starts failed in a row since %s; next start %s; requests get 502 with:\n  %s\n",
			f.Name, h.Failures, h.Since.Local().Format(time.DateTime), next, h.LastError)
	}
}

// failingError prints a deploy's failing functions and says so as an
// error (deploy exits 1): the rest of the deploy applied.
func failingError(w io.Writer, failing map[string]string) error {
	if len(failing) == 0 {
		return nil
	}
	names := make([]string, 0, len(failing))
	for n := range failing {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "failing   %s: %s\n", n, failing[n])
	}
	return fmt.Errorf("%d function(s) deployed but failing: their instances cannot start, so they answer 502 with the init error and retry with backoff (stoke ls shows them); every other function serves", len(names))
}
