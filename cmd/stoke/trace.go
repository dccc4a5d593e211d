package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/stokehq/stoke/internal/trace"
)

func traceCmd(g *globals) *cobra.Command {
	var asJSON bool
	var width int
	var wait time.Duration
	c := &cobra.Command{
		Use:   "trace REQUEST_ID",
		Short: "Where one request's time went: gateway, queue, init (cold starts) and invoke",
		Long: `Trace prints the spans of one invocation as a waterfall, each bar placed and
scaled on the whole request (the gateway span): queue is the wait for an
instance, init the instance's start on a cold start (it overlaps queue), invoke
the function's own work. The request id is the X-Request-Id header of the
response, or a row of stoke invocations. A trace is kept as long as its invocation's
record (the latest 100,000 invocations of each function). Records are written
asynchronously, a moment after the response: for a request that just finished,
trace waits up to --wait for it.`,
		Example: `  stoke trace 3f9c2a4e-8d1b-4c6e-9a0f-5b7d2e1c8a34
  stoke trace 3f9c2a4e-8d1b-4c6e-9a0f-5b7d2e1c8a34 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			cl, err := g.client()
			if err != nil {
				return err
			}
			t, err := waitTrace(cl, args[0], wait)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(t)
			}
			return trace.Waterfall(cmd.OutOrStdout(), t, width)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the spans as JSON")
	c.Flags().DurationVar(&wait, "wait", 3*time.Second, "how long to wait for the trace of a request that just finished (its record is written asynchronously)")
	c.Flags().IntVar(&width, "width", 40, "cells of the gateway span's bar")
	return c
}

// waitTrace gets a request's trace, polling for up to wait while the admin
// API says it has none: right after a response, its record may not be
// written yet.
func waitTrace(cl *client, id string, wait time.Duration) (*trace.Trace, error) {
	deadline := time.Now().Add(wait)
	for {
		resp, err := cl.do("GET", "/v1/traces/"+url.PathEscape(id), nil, nil)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusNotFound || time.Now().After(deadline) {
			var t trace.Trace
			if resp.StatusCode == http.StatusNotFound {
				resp.Body.Close()
				return nil, fmt.Errorf("no trace of request %s at %s (waited %s for it): a request id is a response's X-Request-Id, or a row of stoke invocations; traces are kept as long as their invocation's record", id, cl.base, wait)
			}
			if err := decode(resp, &t); err != nil {
				return nil, err
			}
			return &t, nil
		}
		resp.Body.Close()
		time.Sleep(100 * time.Millisecond) // polling the store: the record lands within a writer batch
	}
}
