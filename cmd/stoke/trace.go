package main

import (
	"encoding/json"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/stokehq/stoke/internal/trace"
)

func traceCmd(g *globals) *cobra.Command {
	var asJSON bool
	var width int
	c := &cobra.Command{
		Use:   "trace REQUEST_ID",
		Short: "Where one request's time went: gateway, queue, init (cold starts) and invoke",
		Long: `Trace prints the spans of one invocation as a waterfall, each bar placed and
scaled on the whole request (the gateway span): queue is the wait for an
instance, init the instance's start on a cold start (it overlaps queue), invoke
the function's own work. The request id is the X-Request-Id header of the
response, or a row of stoke invocations. A trace is kept as long as its invocation's
record (the latest 100,000 invocations of each function).`,
		Example: `  stoke trace 3f9c2a4e-8d1b-4c6e-9a0f-5b7d2e1c8a34
  stoke trace 3f9c2a4e-8d1b-4c6e-9a0f-5b7d2e1c8a34 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			cl, err := g.client()
			if err != nil {
				return err
			}
			var t trace.Trace
			if err := cl.getJSON("/v1/traces/"+url.PathEscape(args[0]), &t); err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(t)
			}
			return trace.Waterfall(cmd.OutOrStdout(), &t, width)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the spans as JSON")
	c.Flags().IntVar(&width, "width", 40, "cells of the gateway span's bar")
	return c
}
