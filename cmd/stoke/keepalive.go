package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/cost"
)

// printKeepAlive is `stoke ls`'s table of what each function's keep-alive
// policy decided: how long it keeps idle instances now, its next
// pre-warm, and what it did so far.
func printKeepAlive(out io.Writer, fns []admin.FunctionInfo, now time.Time) {
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION\tKEEP_ALIVE\tIDLE KEPT FOR\tSCALE-OUT KEPT FOR\tNEXT PRE-WARM\tPRE-WARMS\tUNUSED\tEVICTIONS\tIDLE GB-s")
	for _, f := range fns {
		k := f.KeepAlive
		keep, extra := config.FormatDuration(k.KeepAlive.Round(time.Second)), config.FormatDuration(k.ScaleOutKeepAlive.Round(time.Second))
		next := "-"
		switch {
		case k.Warm > 0:
			next, keep, extra = fmt.Sprintf("holding %d now", k.Warm), "-", "-"
		case !k.NextPrewarm.IsZero():
			next = "in " + config.FormatDuration(k.NextPrewarm.Sub(now).Round(time.Second))
			keep, extra = "unloaded", "unloaded"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%.1f\n", f.Name, k.Policy, keep, extra, next,
			k.Prewarms, k.PrewarmsUnused, k.Evictions, k.IdleGBSeconds)
	}
	tw.Flush()
}

// keepAliveLine says in a sentence what the policy did with the window's
// traffic against Lambda's fixed 10-minute keep-alive, priced.
func keepAliveLine(k *cost.KeepAlive) string {
	saved := fmt.Sprintf("saved %d cold starts (%s of init)", k.Saved, cost.Dollars(k.SavedCost))
	if k.Saved < 0 {
		saved = fmt.Sprintf("made %d more cold starts", -k.Saved)
	}
	return fmt.Sprintf("keep_alive %s, replayed: %d cold starts where fixed:10m makes %d — %s, keeping %.1f GB-s idle (%s) against fixed:10m's %.1f GB-s (%s); this version measured %.1f GB-s idle (%s) since it was deployed",
		k.Policy, k.ColdStarts, k.BaselineColdStarts, saved, k.IdleGBSeconds, cost.Dollars(k.IdleCost),
		k.BaselineIdleGBs, cost.Dollars(k.BaselineIdleCost), k.LiveIdleGBSeconds, cost.Dollars(k.LiveIdleCost))
}
