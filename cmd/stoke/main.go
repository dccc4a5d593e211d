// Command stoke runs HTTP apps as serverless functions with AWS Lambda's
// model, and talks to a running Stoke through its admin API.
package main

import (
	"fmt"
	"os"

	"github.com/stokehq/stoke/internal/sandbox"
)

func main() {
	// First: a sandbox stub re-runs this binary and must not initialise the CLI.
	sandbox.MaybeRunStub()
	root := rootCmd()
	root.SetArgs(legacyLogsFollow(os.Args[1:], func(s string) { fmt.Fprintln(os.Stderr, s) }))
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "stoke:", err)
		os.Exit(1)
	}
}
