package main

import (
	"encoding/json"
	"fmt"
	"github.com/stokehq/stoke/internal/config"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/cost"
)

func costCmd(g *globals) *cobra.Command {
	since := window(24 * time.Hour)
	var asJSON bool
	c := &cobra.Command{
		Use:   "cost [FUNCTION]",
		Short: "What the recorded invocations would cost on AWS Lambda, and what keep_warm would change",
		Long: `Cost prices the invocations of the last --since (default 24h), per function, with
the billing: prices of stoke.yaml (Lambda's x86 prices by default): the request
charge, billed duration × memory, init time of cold starts (billed since
2025-08-01; billing.bill_init), and keep_warm instances at the provisioned-
concurrency price for the part of the window the function has been deployed
on this server (since its first deploy there, across versions).

Then it replays the recorded arrivals through the same keep-alive code the pool
runs (stoke simulate): the function's keep_alive policy against Lambda's fixed
10-minute keep-alive — the cold starts it saved, priced as their init at the
duration price, and the idle memory each kept, at the keep-warm price — and,
for keep_warm 0, 1, 2, 3 and 5 under that policy, how many of the cold starts
they would have removed and what they cost per day. The replay's keep_warm
instances are idle from where the keep-warm column starts charging (or the
first recorded arrival, if earlier), never before the function existed. It
assumes one request per instance at a time and no max_instances limit.`,
		Example: `  stoke cost
  stoke cost hello --since 1h`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			if since <= 0 {
				return fmt.Errorf("--since %s: want a positive duration like 24h or 7d", &since)
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			q := url.Values{"since": {time.Duration(since).String()}}
			if len(args) == 1 {
				q.Set("function", args[0])
			}
			var rep admin.CostReport
			if err := cl.getJSON("/v1/cost?"+q.Encode(), &rep); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			if len(rep.Functions) == 0 {
				if len(args) == 1 {
					if err := cl.unknownFunction(args[0]); err != nil {
						return err
					}
				}
				fmt.Fprintf(out, "No invocations in the last %s, and no function deployed.\n", &since)
				return nil
			}
			return printCost(out, &rep, time.Duration(since))
		},
	}
	c.Flags().Var(&since, "since", "the window: invocations in the last DURATION (e.g. 24h, 7d)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return c
}

func printCost(out io.Writer, rep *admin.CostReport, since time.Duration) error {
	p := rep.Prices
	initNote := "init billed"
	if !p.BillInit {
		initNote = "init not billed"
	}
	fmt.Fprintf(out, "last %s; prices: $%s per GB-s, $%s per request, %s, keep-warm $%s per GB-s, billed in %s steps\n\n",
		config.FormatDuration(since), num(p.PerGBSecond), num(p.PerRequest), initNote, num(p.KeepWarmPerGBSecond), p.Granularity)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION\tINVOCATIONS\tCOLD\tTHROTTLED\tGB-s\tREQUESTS\tDURATION\tINIT\tKEEP-WARM\tTOTAL")
	var total cost.Summary
	for _, f := range rep.Functions {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.3f\t%s\t%s\t%s\t%s\t%s\n", f.Function, f.Invocations, f.ColdStarts, f.Throttles, f.GBSeconds,
			cost.Dollars(f.RequestCost), cost.Dollars(f.DurationCost), cost.Dollars(f.InitCost), cost.Dollars(f.KeepWarmCost), cost.Dollars(f.Total))
		total.Invocations += f.Invocations
		total.ColdStarts += f.ColdStarts
		total.Throttles += f.Throttles
		total.GBSeconds += f.GBSeconds
		total.RequestCost += f.RequestCost
		total.DurationCost += f.DurationCost
		total.InitCost += f.InitCost
		total.KeepWarmCost += f.KeepWarmCost
		total.Total += f.Total
	}
	if len(rep.Functions) > 1 {
		f := total
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.3f\t%s\t%s\t%s\t%s\t%s\n", "all", f.Invocations, f.ColdStarts, f.Throttles, f.GBSeconds,
			cost.Dollars(f.RequestCost), cost.Dollars(f.DurationCost), cost.Dollars(f.InitCost), cost.Dollars(f.KeepWarmCost), cost.Dollars(f.Total))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range rep.Functions {
		if f.Invocations == 0 || len(f.Advice) == 0 {
			continue
		}
		deployed := ""
		if f.KeepWarmSince.After(rep.Since) { // keep-warm and the replay count from the deploy, not the window's start
			deployed = fmt.Sprintf("; deployed %s ago: keep-warm and the replay count from then", config.FormatDuration(rep.Until.Sub(f.KeepWarmSince).Round(time.Second)))
		}
		fmt.Fprintf(out, "\n%s (%d MB, keep_warm %d): duration p50 %.2f ms, p95 %.2f ms, p99 %.2f ms%s\n",
			f.Function, f.MemoryMB, f.KeepWarm, f.DurationP50, f.DurationP95, f.DurationP99, deployed)
		if f.KeepAlive != nil {
			fmt.Fprintf(out, "  %s\n", keepAliveLine(f.KeepAlive))
		}
		for _, a := range f.Advice {
			now := ""
			if a.KeepWarm == f.KeepWarm {
				now = " (as deployed)"
			}
			fmt.Fprintf(out, "  %s%s\n", adviceLine(a), now)
		}
	}
	return nil
}

// num prints a price as written in stoke.yaml: 0.0000166667, not 1.66667e-05.
func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// adviceLine says what keep_warm N would have done, in one sentence.
func adviceLine(a cost.Advice) string {
	price := cost.Dollars(a.PerDay) + "/day"
	switch {
	case a.ColdStarts > a.Recorded:
		return fmt.Sprintf("keep_warm %d would have had %d cold starts instead of %d, for %s", a.KeepWarm, a.ColdStarts, a.Recorded, price)
	case a.Recorded == 0:
		return fmt.Sprintf("keep_warm %d: no cold starts to remove, for %s", a.KeepWarm, price)
	default:
		return fmt.Sprintf("keep_warm %d would have removed %d of %d cold starts for %s", a.KeepWarm, a.Removed, a.Recorded, price)
	}
}
