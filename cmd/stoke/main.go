// Command stoke runs HTTP apps as serverless functions with AWS Lambda's
// model, and talks to a running Stoke through its admin API.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "stoke:", err)
		os.Exit(1)
	}
}
