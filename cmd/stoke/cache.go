package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/cache"
	"github.com/stokehq/stoke/internal/config"
)

func cacheCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "cache",
		Short: "Work with functions' response caches (stoke cache purge)",
		Long: `A function with a cache block in stoke.yaml has an HTTP response cache in the
gateway (RFC 9111): repeat GETs and HEADs are answered without an invocation,
and a stale entry answers at once while the function has no idle instance
(stale_if_cold). stoke ls shows each cache's entries, memory and hit ratio;
docs/cache.md says what is stored and for how long.`,
		Args: cobra.NoArgs,
	}
	c.AddCommand(cachePurgeCmd(g))
	return c
}

func cachePurgeCmd(g *globals) *cobra.Command {
	var req admin.PurgeRequest
	c := &cobra.Command{
		Use:   "purge FUNCTION (--path P | --prefix P | --all)",
		Short: "Remove stored responses from a function's cache",
		Long: `Purge removes stored responses from FUNCTION's cache, so the next request for
them invokes the function. --path /x removes /x with any query string (or only
/x?a=1 when the path has a query); --prefix /x removes every path starting
with /x; --all empties the cache. A deploy of a new version empties it too.
In a cluster every node's cache is purged; a node that does not answer is
named, and the command fails.`,
		Example: "  stoke cache purge api --path /api/notes/\n  stoke cache purge api --prefix /api/\n  stoke cache purge api --all",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 0
			for _, set := range []bool{req.Path != "", req.Prefix != "", req.All} {
				if set {
					n++
				}
			}
			if n != 1 {
				return fmt.Errorf("say what to purge: exactly one of --path, --prefix or --all")
			}
			cmd.SilenceUsage = true
			cl, err := g.client()
			if err != nil {
				return err
			}
			body, _ := json.Marshal(req)
			resp, err := cl.do("POST", "/v1/functions/"+url.PathEscape(args[0])+"/cache/purge", bytes.NewReader(body),
				http.Header{"Content-Type": {"application/json"}})
			if err != nil {
				return err
			}
			var res admin.PurgeResult
			if err := decode(resp, &res); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "purged %d entries from %s's cache\n", res.Purged, args[0])
			if len(res.Missing) > 0 {
				return fmt.Errorf("not purged on %s (did not answer in time): they may answer from what they hold until it expires; run the purge again", strings.Join(res.Missing, ", "))
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&req.Path, "path", "", "purge this path (any query string, unless it has one)")
	f.StringVar(&req.Prefix, "prefix", "", "purge every path starting with this")
	f.BoolVar(&req.All, "all", false, "empty the cache")
	return c
}

// printCaches is stoke ls's cache table, for the functions that have one.
func printCaches(out io.Writer, fns []admin.FunctionInfo) {
	any := false
	for _, f := range fns {
		any = any || f.Cache != nil
	}
	if !any {
		return
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION\tCACHE\tENTRIES\tHIT RATIO\tHIT\tSTALE\tCOLLAPSED\tREVALIDATED\tMISS\tBYPASS\tEVICTIONS")
	for _, f := range fns {
		s := f.Cache
		if s == nil {
			continue
		}
		r := s.Requests
		fmt.Fprintf(tw, "%s\t%s / %s\t%d\t%.0f%%\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", f.Name, size(s.Bytes), config.FormatBytes(s.MaxBytes),
			s.Entries, 100*s.HitRatio, r[cache.Hit], r[cache.Stale], r[cache.Collapsed], r[cache.Revalidated], r[cache.Miss], r[cache.Bypass], s.Evictions)
	}
	tw.Flush()
}

// size prints bytes held, to one decimal.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
