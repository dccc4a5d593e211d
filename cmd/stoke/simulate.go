package main

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/simulate"
)

func simulateCmd(g *globals) *cobra.Command {
	var (
		inv, durs, mems, policies, budget, format, out, fromRecords string
		seed                                                        int64
		generate                                                    int
		init                                                        time.Duration
		since                                                       = window(7 * 24 * time.Hour)
	)
	c := &cobra.Command{
		Use:   "simulate --invocations FILE | --from-records FN|all",
		Short: "Replay a trace through the keep-alive policies and compare cold starts with idle memory",
		Long: `Simulate replays invocations through keep-alive policies — the same code the
pool runs (docs/keepalive.md) — and reports, per policy, the cold starts, the
75th percentile over functions of each function's cold-start percentage
(Shahrad et al., USENIX ATC 2020), and the memory × time of instances kept warm
while idle.

The trace is an Azure Functions 2019 day (github.com/Azure/AzurePublicDataset,
CC BY 4.0), columns found by header name: --invocations in the original schema
(HashOwner,HashApp,HashFunction,Trigger,1..1440) or the InVitro sampler's
(HashFunction,HashApp,HashOwner,minute_1..minute_1440); --durations gives each
function's Average execution time in ms (default 1s), --memory each app's
AverageAllocatedMb (default 128 MB). A minute's invocations are spread evenly
over the minute with a phase per function drawn from --seed: the same seed gives
the same result. Each invocation needs its own instance while it runs (one
request per instance), so overlapping invocations need more instances; a cold
start takes --init before the request runs.

Or --generate N makes a one-day trace of N functions shaped like the published
statistics of Azure's (popularity, timers, bursts, durations, memory; the seed
picks it). Or --from-records replays this Stoke's own invocation records (of one function,
or all) from the last --since, through the admin API, with their recorded
durations, init times and memory sizes.

Policies (--policy, comma-separated): fixed:<duration> (idle_timeout),
hybrid, adaptive, keep_warm:N (keep_warm N above fixed:10m).
--memory-budget SIZE (e.g. 64GB) simulates a node-wide budget with eviction.`,
		Example: `  stoke simulate --invocations 200_inv.csv --durations 200_run.csv --memory 200_mem.csv
  stoke simulate --invocations 200_inv.csv --policy fixed:10m,fixed:60m,keep_warm:1,hybrid,adaptive --format json
  stoke simulate --invocations 200_inv.csv --out pareto.svg
  stoke simulate --from-records all --since 7d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			pols, err := simulate.ParsePolicies(policies)
			if err != nil {
				return err
			}
			if format != "table" && format != "json" {
				return fmt.Errorf("--format %q: allowed: table, json", format)
			}
			budgetMB := 0
			if budget != "" {
				if budgetMB, err = simulate.ParseSize(budget); err != nil {
					return fmt.Errorf("--memory-budget: %w", err)
				}
			}
			if init < 0 || init > time.Hour {
				return fmt.Errorf("--init %s: want 0 to 1h", init)
			}
			var tr *simulate.Trace
			switch {
			case (inv != "") && (fromRecords != "" || generate > 0) || (fromRecords != "" && generate > 0):
				return errors.New("--invocations, --from-records and --generate: give one")
			case generate > 0:
				if generate > simulate.MaxFunctions {
					return fmt.Errorf("--generate %d: at most %d functions", generate, simulate.MaxFunctions)
				}
				tr = simulate.Generate(generate, seed, init)
			case inv != "":
				tr, err = simulate.ReadAzure(simulate.AzureFiles{Invocations: inv, Durations: durs, Memory: mems}, seed, init)
			case fromRecords != "":
				tr, err = recordsTrace(g, fromRecords, time.Duration(since))
			default:
				return errors.New("give --invocations FILE (an Azure Functions 2019 day), --from-records FN|all or --generate N")
			}
			if err != nil {
				return err
			}
			rep := simulate.Run(tr, simulate.Options{Policies: pols, BudgetMB: budgetMB})
			if out != "" {
				if err := writeChart(out, rep); err != nil {
					return err
				}
			}
			if format == "json" {
				return simulate.WriteJSON(cmd.OutOrStdout(), rep)
			}
			return simulate.WriteTable(cmd.OutOrStdout(), rep)
		},
	}
	f := c.Flags()
	f.StringVar(&inv, "invocations", "", "invocations per function per minute (Azure Functions 2019 CSV)")
	f.StringVar(&durs, "durations", "", "execution times per function (Azure 2019 durations CSV; default 1s each)")
	f.StringVar(&mems, "memory", "", "allocated memory per app (Azure 2019 memory CSV; default 128 MB each)")
	f.StringVar(&policies, "policy", simulate.DefaultPolicies, "policies to compare: fixed:<duration>, hybrid, adaptive, keep_warm:N")
	f.StringVar(&budget, "memory-budget", "", "node-wide memory budget, e.g. 64GB or 8192MB (default: none)")
	f.Int64Var(&seed, "seed", 1, "places each minute's invocations within the minute")
	f.DurationVar(&init, "init", simulate.DefaultInit, "a cold start's duration (the Azure trace does not record it)")
	f.StringVar(&format, "format", "table", "table or json")
	f.StringVar(&out, "out", "", "also write the Pareto chart (cold starts vs wasted memory) to a .svg or .png file")
	f.StringVar(&fromRecords, "from-records", "", "replay this Stoke's records of a function, or all, instead of a file")
	f.IntVar(&generate, "generate", 0, "simulate a generated one-day trace of N functions shaped like Azure's (the seed picks it; docs/keepalive.md)")
	f.Var(&since, "since", "with --from-records: the records of the last DURATION (e.g. 7d, 36h)")
	return c
}

// recordsTrace fetches the records of fn (or of every function, for "all")
// from the last since, through the admin API.
func recordsTrace(g *globals, fn string, since time.Duration) (*simulate.Trace, error) {
	if since <= 0 {
		return nil, fmt.Errorf("--since %s: want a positive duration like 7d or 36h", since)
	}
	cl, err := g.client()
	if err != nil {
		return nil, err
	}
	names := []string{fn}
	if fn == "all" {
		var fns []admin.FunctionInfo
		if err := cl.getJSON("/v1/functions", &fns); err != nil {
			return nil, err
		}
		names = names[:0]
		for _, f := range fns {
			names = append(names, f.Name)
		}
	}
	to := time.Now()
	from := to.Add(-since)
	var recs []record.Record
	for _, n := range names {
		var rs []record.Record
		q := url.Values{"since": {since.String()}, "limit": {"0"}}
		if err := cl.getJSON("/v1/functions/"+url.PathEscape(n)+"/invocations?"+q.Encode(), &rs); err != nil {
			return nil, fmt.Errorf("reading the records of %s: %w", n, err)
		}
		recs = append(recs, rs...)
	}
	return simulate.FromRecords(recs, from, to), nil
}
