package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stokehq/stoke/internal/admin"
)

func eventsCmd(g *globals) *cobra.Command {
	var failed bool
	var status string
	var limit int
	var retry int64
	var payloads bool
	c := &cobra.Command{
		Use:   "events FUNCTION",
		Short: "List a function's Event (asynchronous) invocations, the failed ones with their payload; retry one",
		Long: `Events lists FUNCTION's Event invocations (the Invoke API's InvocationType
Event), newest first: status, attempts, throttled tries, the version each was
accepted for, and the last error.

An event that keeps failing is retried after 1 min and 2 min (as many times as
maximum_retry_attempts allows, default 2); one that finds every instance busy
is throttled and retried with a backoff from 1 s to 5 min without using an
attempt; one older than maximum_event_age (default 6h) is given up. A failed
event is kept a week with its payload, error and attempts, Lambda's on-failure
destination: --failed lists them with their whole last error, --payload
shows their payloads, and
--retry ID queues one again (its attempts and age start over).`,
		Args: cobra.ExactArgs(1),
		Example: `  stoke events worker
  stoke events worker --failed --payload
  stoke events worker --retry 42`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			c, err := g.client()
			if err != nil {
				return err
			}
			fn := args[0]
			out := cmd.OutOrStdout()
			if cmd.Flags().Changed("retry") {
				resp, err := c.do("POST", "/v1/functions/"+url.PathEscape(fn)+"/events/"+strconv.FormatInt(retry, 10)+"/retry", nil, http.Header{})
				if err != nil {
					return err
				}
				var ev admin.EventInfo
				if err := decode(resp, &ev); err != nil {
					return err
				}
				fmt.Fprintf(out, "queued event %d (request %s) of %s again: it runs now, its attempts and age starting over (stoke events %s shows how it goes)\n",
					ev.ID, ev.RequestID, fn, fn)
				return nil
			}
			if failed {
				if status != "" && status != "failed" {
					return fmt.Errorf("--failed and --status %s: choose one", status)
				}
				status = "failed"
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if status != "" {
				q.Set("status", status)
			}
			var evs []admin.EventInfo
			if err := c.getJSON("/v1/functions/"+url.PathEscape(fn)+"/events?"+q.Encode(), &evs); err != nil {
				return err
			}
			if len(evs) == 0 {
				if err := c.unknownFunction(fn); err != nil {
					return err
				}
				what := "Event invocations"
				if status != "" {
					what = status + " events"
				}
				fmt.Fprintf(out, "No %s of %s.\n", what, fn)
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tACCEPTED\tREQUEST ID\tVERSION\tSTATUS\tATTEMPTS\tTHROTTLED\tINTERRUPTED\tLAST ERROR")
			for _, e := range evs {
				st := e.Status
				if e.Status == "queued" && !e.NextAttempt.IsZero() {
					st += " (next " + e.NextAttempt.Local().Format("15:04:05") + ")"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", e.ID, e.Accepted.Local().Format("2006-01-02 15:04:05"),
					e.RequestID, e.Version, st, e.Attempts, e.Throttles, e.Interrupted, oneLine(e.LastError, 120))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, e := range evs {
				// The table shortens the error to a line; a failed event's
				// cause is what one reads --failed for.
				if failed && e.LastError != "" {
					fmt.Fprintf(out, "\nevent %d last error:\n%s\n", e.ID, e.LastError)
				}
				if payloads {
					// As it was sent (the admin API's answer indents it).
					var p bytes.Buffer
					if json.Compact(&p, e.Payload) != nil {
						p.Reset()
						p.Write(e.Payload)
					}
					fmt.Fprintf(out, "\nevent %d payload:\n%s\n", e.ID, p.Bytes())
				}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&failed, "failed", false, "only the events that failed for good (kept a week)")
	c.Flags().StringVar(&status, "status", "", "only events with this status: queued, running, succeeded, failed")
	c.Flags().IntVar(&limit, "limit", 50, "at most this many, newest first")
	c.Flags().Int64Var(&retry, "retry", 0, "queue the failed event with this ID again")
	c.Flags().BoolVar(&payloads, "payload", false, "print each event's payload too")
	return c
}

// oneLine shortens s to one line of at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	if s == "" {
		return "-"
	}
	return s
}
