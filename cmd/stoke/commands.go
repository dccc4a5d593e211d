package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/store"
)

func deployCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "deploy",
		Short: "Apply a changed stoke.yaml to the running Stoke",
		Long: `Deploy sends the config file (-f) to the running Stoke. Functions whose settings
changed are built and started as a new version; once the new version's
keep_warm instances are ready it takes the traffic and the old version drains:
requests in flight finish on it, none is dropped. Unchanged functions keep their
instances. A config error, a failed build or a new version that cannot start
changes nothing: a keep_warm instance that fails to start fails the deploy at
once, with its cause (exit status, last output). A new function that cannot
start has no previous version to keep: it is deployed failing (its requests
get 502 with the init error, its starts back off from 1 s to 5 min), the rest
of the deploy applies, and deploy exits 1 naming it. Deploying again retries a
failing function at once. For python-wsgi functions the output names the
interpreter that runs the app.`,
		Example: "  stoke deploy -f examples/stoke.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			yaml, err := os.ReadFile(g.file)
			if err != nil {
				return fileError(g.file, err)
			}
			abs, _ := filepath.Abs(g.file)
			body, _ := json.Marshal(map[string]string{"path": abs, "yaml": string(yaml)})
			c, err := g.client()
			if err != nil {
				return err
			}
			resp, err := c.do("POST", "/v1/deploy", bytes.NewReader(body), http.Header{"Content-Type": {"application/json"}})
			if err != nil {
				return err
			}
			var res admin.DeployResult
			if err := decode(resp, &res); err != nil {
				return fmt.Errorf("deploy refused:\n%w", err)
			}
			out := cmd.OutOrStdout()
			for _, w := range res.Warnings {
				fmt.Fprintln(out, "warning:", w)
			}
			names := make([]string, 0, len(res.Deployed))
			for n := range res.Deployed {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				if runs := res.Runs[n]; runs != "" {
					fmt.Fprintf(out, "deployed  %s version %s (%s)\n", n, res.Deployed[n], runs)
				} else {
					fmt.Fprintf(out, "deployed  %s version %s\n", n, res.Deployed[n])
				}
			}
			for _, n := range res.Unchanged {
				fmt.Fprintf(out, "unchanged %s\n", n)
			}
			for _, n := range res.Removed {
				fmt.Fprintf(out, "removed   %s\n", n)
			}
			return failingError(out, res.Failing)
		},
	}
}

func lsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List functions, their instances (starting, idle, busy, draining) and what each keep-alive policy decided",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			c, err := g.client()
			if err != nil {
				return err
			}
			var fns []admin.FunctionInfo
			if err := c.getJSON("/v1/functions", &fns); err != nil {
				return err
			}
			if len(fns) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "No functions are deployed at %s; deploy some with stoke deploy -f stoke.yaml.\n", c.base)
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FUNCTION\tVERSION\tMEMORY\tKEEP_WARM\tMAX\tSTARTING\tIDLE\tBUSY\tDRAINING\tWAITING\tROUTES")
			for _, f := range fns {
				n := map[string]int{}
				for _, in := range f.Instances {
					n[string(in.State)]++
				}
				fmt.Fprintf(tw, "%s\t%s\t%d MB\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", f.Name, f.Version, f.MemoryMB, f.KeepWarm, f.MaxInstances,
					n["starting"], n["idle"], n["busy"], n["draining"], f.Waiting, strings.Join(f.Routes, " "))
			}
			tw.Flush()
			printKeepAlive(cmd.OutOrStdout(), fns, time.Now())
			printFailing(cmd.OutOrStdout(), fns)
			printCaches(cmd.OutOrStdout(), fns)
			// Templates (python-wsgi with snapshot): made once per version,
			// their start-up is not any request's cold start.
			first := true
			for _, f := range fns {
				if sn := f.Snapshot; sn != nil {
					if first {
						fmt.Fprintln(cmd.OutOrStdout())
						first = false
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s: instances fork from template %s (pid %d): import and warm-up took %.0f ms, %d MB, python %s\n",
						f.Name, sn.ID, sn.Pid, sn.InitMS, sn.MemoryMB, sn.Interpreter)
					if sn.Warning != "" {
						fmt.Fprintf(cmd.OutOrStdout(), "  warning: %s\n", sn.Warning)
					}
				}
			}
			any := false
			for _, f := range fns {
				any = any || len(f.Instances) > 0
			}
			if !any {
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout())
			tw = tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			// A cluster's view names each instance's node.
			clustered := false
			for _, f := range fns {
				for _, in := range f.Instances {
					clustered = clustered || in.Node != ""
				}
			}
			node := func(n string) string {
				if clustered {
					return n + "\t"
				}
				return ""
			}
			fmt.Fprintln(tw, node("NODE")+"FUNCTION\tINSTANCE\tSTATE\tPID\tMEMORY USED\tMAX USED\tINIT\tSERVED\tAGE")
			for _, f := range fns {
				for _, in := range f.Instances {
					fmt.Fprintf(tw, "%s%s\t%s\t%s\t%d\t%d/%d MB\t%d MB\t%.2f ms\t%d\t%s\n", node(in.Node), f.Name, in.ID, in.State, in.Pid,
						in.MemoryMB, f.MemoryMB, in.MaxMemoryMB, in.InitMS, in.Served, in.Age.Round(time.Second))
				}
			}
			return tw.Flush()
		},
	}
}

func invokeCmd(g *globals) *cobra.Command {
	var path, method, data string
	var headers []string
	var include bool
	c := &cobra.Command{
		Use:   "invoke FUNCTION",
		Short: "Send one HTTP request to a function and print its response",
		Long: `Invoke sends one request to FUNCTION through the running Stoke, as if it came
through the gateway, whatever the function's routes. The response body goes to
stdout; with -i, the status and headers too (X-Stoke-Cold says whether the
request waited for a cold start). --data @file reads the body from a file,
--data @- from stdin.`,
		Example: `  stoke invoke hello
  stoke invoke hello --path /hello/world --method POST --data '{"a":1}' -i`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			body, err := readData(data)
			if err != nil {
				return err
			}
			if method == "" {
				method = "GET"
				if body != nil {
					method = "POST"
				}
			}
			h := http.Header{}
			for _, kv := range headers {
				k, v, ok := strings.Cut(kv, ":")
				if !ok {
					return fmt.Errorf("--header %q: want 'Name: value'", kv)
				}
				h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			u, err := url.Parse(path)
			if err != nil {
				return fmt.Errorf("--path: %w", err)
			}
			var rd io.Reader
			if body != nil {
				rd = bytes.NewReader(body)
			}
			target := "/v1/functions/" + url.PathEscape(args[0]) + "/invoke/" + strings.TrimPrefix(u.EscapedPath(), "/")
			if u.RawQuery != "" {
				target += "?" + u.RawQuery
			}
			resp, err := cl.do(strings.ToUpper(method), target, rd, h)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound {
				if err := cl.unknownFunction(args[0]); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if include {
				fmt.Fprintf(out, "%s %s\n", resp.Proto, resp.Status)
				keys := make([]string, 0, len(resp.Header))
				for k := range resp.Header {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					for _, v := range resp.Header[k] {
						fmt.Fprintf(out, "%s: %s\n", k, v)
					}
				}
				fmt.Fprintln(out)
			}
			if _, err := io.Copy(out, resp.Body); err != nil {
				return err
			}
			if resp.StatusCode >= 400 {
				return fmt.Errorf("%s answered %s", args[0], resp.Status)
			}
			return nil
		},
	}
	c.Flags().StringVar(&path, "path", "/", "request path (and query)")
	c.Flags().StringVarP(&method, "method", "X", "", "HTTP method (default GET, or POST with --data)")
	c.Flags().StringVarP(&data, "data", "d", "", "request body; @file reads a file, @- stdin")
	c.Flags().StringArrayVarP(&headers, "header", "H", nil, "request header 'Name: value' (repeatable)")
	c.Flags().BoolVarP(&include, "include", "i", false, "print the status line and headers")
	return c
}

func readData(data string) ([]byte, error) {
	switch {
	case data == "":
		return nil, nil
	case data == "@-":
		return io.ReadAll(os.Stdin)
	case strings.HasPrefix(data, "@"):
		return os.ReadFile(data[1:])
	}
	return []byte(data), nil
}

func logsCmd(g *globals) *cobra.Command {
	var follow bool
	var lines int
	c := &cobra.Command{
		Use:   "logs FUNCTION",
		Short: "Print a function's log: START/END/REPORT lines and the app's output",
		Long: `Logs prints FUNCTION's log as Lambda writes it to CloudWatch: a START line, the
app's own stdout/stderr lines, END, and REPORT with Duration, Billed Duration,
Memory Size, Max Memory Used and, on cold starts, Init Duration (tab-separated,
byte-compatible with AWS, so tools that parse Lambda logs read them). Instance
starts and stops are logged too; Stoke's own lines are marked (docs/lambda.md).
Each line is printed after its local time. --follow keeps following.

-f names the config file, as on every command. (It used to mean follow here:
-f with no file after it still follows, with a line saying to use --follow.)`,
		Example: `  stoke logs hello --follow
  stoke logs hello -f examples/stoke.yaml -n 50`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			c, err := g.client()
			if err != nil {
				return err
			}
			q := url.Values{"limit": {fmt.Sprint(lines)}, "tail": {"1"}}
			if follow {
				q.Set("follow", "1")
			}
			resp, err := c.do("GET", "/v1/functions/"+url.PathEscape(args[0])+"/logs?"+q.Encode(), nil, nil)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode >= 300 {
				return apiError(resp)
			}
			out := bufio.NewWriter(cmd.OutOrStdout())
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64*1024), 4<<20)
			n := 0
			for sc.Scan() {
				var l store.LogLine
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
					continue
				}
				n++
				if l.Node != "" { // a cluster's merged log
					fmt.Fprintf(out, "%s %s %s\n", l.Time.Local().Format("15:04:05.000"), l.Node, l.Text)
				} else {
					fmt.Fprintf(out, "%s %s\n", l.Time.Local().Format("15:04:05.000"), l.Text)
				}
				if follow {
					out.Flush()
				}
			}
			if err := out.Flush(); err != nil {
				return err
			}
			if n == 0 && !follow {
				if err := c.unknownFunction(args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "No log lines for %s yet: it has not started an instance or served a request.\n", args[0])
			}
			return nil
		},
	}
	c.Flags().BoolVar(&follow, "follow", false, "keep printing new lines (-f, its old spelling, still follows when no file comes after it)")
	c.Flags().IntVarP(&lines, "lines", "n", 200, "how many of the latest lines to print first")
	return c
}

func invocationsCmd(g *globals) *cobra.Command {
	var cold bool
	var limit int
	var since window // 0: no bound
	c := &cobra.Command{
		Use:   "invocations FUNCTION",
		Short: "List a function's recent invocations: cold or warm, init and duration, billed ms, status",
		Long: `Invocations lists FUNCTION's recent invocations, newest first by start time: cold or warm,
init, queue and duration ms, billed ms, max memory, status, error and instance.
A cold start whose init ran with init_boost (without its CPU quota until it
was ready) shows as "COLD (boost)".`,
		Args: cobra.ExactArgs(1),
		Example: `  stoke invocations hello
  stoke invocations hello --cold --since 1h`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			if since < 0 {
				return fmt.Errorf("--since %s: want a positive duration like 1h or 7d", &since)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			q := url.Values{"limit": {fmt.Sprint(limit)}}
			if cold {
				q.Set("cold", "1")
			}
			if since > 0 {
				q.Set("since", time.Duration(since).String())
			}
			var recs []record.Record
			if err := c.getJSON("/v1/functions/"+url.PathEscape(args[0])+"/invocations?"+q.Encode(), &recs); err != nil {
				return err
			}
			if len(recs) == 0 {
				if err := c.unknownFunction(args[0]); err != nil {
					return err
				}
				what, when := "invocations", ""
				if cold {
					what = "cold starts"
				}
				if since > 0 {
					when = " in the last " + since.String()
				}
				fmt.Fprintf(cmd.OutOrStdout(), "No %s of %s recorded%s.\n", what, args[0], when)
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			clustered := len(recs) > 0 && recs[0].Node != ""
			node := func(n string) string {
				if clustered {
					return "\t" + n
				}
				return ""
			}
			fmt.Fprintln(tw, "TIME\tREQUEST ID\tVERSION\tCOLD\tINIT ms\tQUEUE ms\tDURATION ms\tBILLED ms\tMAX MEM\tSTATUS\tERROR\tINSTANCE"+node("NODE"))
			for _, r := range recs {
				coldS, init := "warm", "-"
				if r.Cold {
					coldS, init = "COLD", fmt.Sprintf("%.2f", r.InitMS)
					if r.InitBoost {
						coldS = "COLD (boost)" // its init ran without the CPU quota
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%d\t%d/%d MB\t%d\t%s\t%s%s\n", r.Start.Local().Format("15:04:05.000"), r.RequestID, r.Version,
					coldS, init, r.QueueMS, r.DurationMS, r.BilledMS, r.MaxMemoryMB, r.MemoryMB, r.Status, r.ErrorType, r.InstanceID, node(r.Node))
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&cold, "cold", false, "only cold starts")
	c.Flags().IntVarP(&limit, "limit", "n", 50, "how many, newest first")
	c.Flags().Var(&since, "since", "only those in the last DURATION (e.g. 1h, 7d)")
	return c
}
