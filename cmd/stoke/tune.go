package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/cost"
	"github.com/stokehq/stoke/internal/tune"
)

func tuneCmd(g *globals) *cobra.Command {
	var memory, method, path, data, event, coldRate, strategy string
	var cold, invocations int
	var granularity time.Duration
	var weight float64
	var outs []string
	c := &cobra.Command{
		Use:   "tune FUNCTION",
		Short: "Measure a function at several memory sizes, cold and warm, and pick the size by cost or speed",
		Long: `Tune starts FUNCTION as a temporary version at each memory size on the running
Stoke, next to the live version (which keeps serving, untouched), and measures
--cold cold starts (the instance is stopped between them) and --invocations warm
invocations of one request. It prints, per size: cold p50/p95 (the request's
wait for its instance's start plus the invocation), init p50, warm p50/p95/p99,
the median billed duration, the cost of a million requests, and the cost of a
million at --cold-rate cold starts, with billing: prices of stoke.yaml
(--granularity 100ms prices with pre-2021 Lambda billing).

Then it recommends a size as AWS Lambda Power Tuning does: cost (cheapest,
ties broken by speed), speed (fastest) or balanced (--weight on cost, the rest
on speed), comparing the typical request and its cost at --cold-rate, and says
why. --out writes the report: .json (every number and sample), .svg or .png
(duration and cost against memory), .html (chart and table). The server keeps
the latest report per function (GET /v1/functions/FUNCTION/tune/latest).

The temporary versions are removed when the tune ends, fails or is interrupted
(Ctrl-C). Their invocations are not recorded in stoke invocations or stoke cost.`,
		Example: `  stoke tune hello
  stoke tune hello --memory all --cold 3 --invocations 20 --out report.html
  stoke tune hello --granularity 100ms --cold-rate 0 --strategy cost
  stoke tune echo --event event.json --strategy balanced --weight 0.3`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			plan := tune.Plan{Cold: cold, Invocations: invocations, Method: method, Path: path,
				Granularity: granularity, Strategy: strategy, Weight: weight}
			var err error
			if plan.MemoryMB, err = tune.ParseMemory(memory); err != nil {
				return err
			}
			if plan.ColdRate, err = tune.ParseRate(coldRate); err != nil {
				return err
			}
			if plan.Body, err = readData(data); err != nil {
				return fmt.Errorf("--data: %w", err)
			}
			if event != "" {
				if plan.Event, err = os.ReadFile(event); err != nil {
					return fmt.Errorf("--event: %w", err)
				}
			}
			if err := plan.Validate(); err != nil {
				return err
			}
			for _, o := range outs {
				if err := checkOut(o); err != nil {
					return err
				}
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			// Ctrl-C cancels the request; the server sees the connection
			// close, cancels the tune and removes its temporary versions.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, err := runTune(ctx, cl, args[0], plan, newBar(os.Stderr))
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("tune interrupted; the server removes its temporary versions")
				}
				return err
			}
			if err := tune.WriteText(cmd.OutOrStdout(), rep); err != nil {
				return err
			}
			for _, o := range outs {
				if err := writeReport(o, rep); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", o)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&memory, "memory", tune.DefaultMemory, "memory sizes in MB, comma-separated, or all (128 to 3008 in 64 MB steps)")
	f.IntVar(&cold, "cold", 5, "cold starts per size")
	f.IntVar(&invocations, "invocations", 50, "warm invocations per size")
	f.StringVar(&path, "path", "/", "request path (and query)")
	f.StringVarP(&method, "method", "X", "", "HTTP method (default GET, or POST with --data)")
	f.StringVarP(&data, "data", "d", "", "request body; @file reads a file, @- stdin")
	f.StringVar(&event, "event", "", "lambda functions: a JSON file sent as the event instead of an HTTP request")
	f.StringVar(&coldRate, "cold-rate", "1%", "share of requests assumed cold, for the blended cost and the recommendation")
	f.DurationVar(&granularity, "granularity", 0, "billing granularity for this report (default billing.granularity; 100ms: pre-2021 Lambda)")
	f.StringVar(&strategy, "strategy", cost.StrategyCost, "cost (ties broken by speed), speed or balanced")
	f.Float64Var(&weight, "weight", 0.5, "balanced: weight on cost from 0 (speed only) to 1 (cost only)")
	f.StringArrayVarP(&outs, "out", "o", nil, "write the report to FILE: .json, .html, .svg or .png (repeatable)")
	return c
}

func checkOut(path string) error {
	switch strings.ToLower(path[strings.LastIndex(path, ".")+1:]) {
	case "json", "html", "htm", "svg", "png":
		return nil
	}
	return fmt.Errorf("--out %s: unknown format; allowed: .json, .html, .svg, .png", path)
}

// runTune posts the plan and reads the NDJSON answer: progress lines for
// the bar, then the report or the error.
func runTune(ctx context.Context, cl *client, fn string, plan tune.Plan, bar *bar) (*tune.Report, error) {
	body, err := json.Marshal(plan)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", cl.base+"/v1/functions/"+url.PathEscape(fn)+"/tune", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+cl.token)
	req.Header.Set("Content-Type", "application/json")
	hc := cl.http
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("cannot reach Stoke's admin API at %s (is `stoke serve` running? --admin sets the address): %w", cl.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return nil, apiError(resp)
	}
	defer bar.done()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 256<<20) // the result line carries every sample
	for sc.Scan() {
		var l admin.TuneLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("reading the tune's progress: %w", err)
		}
		switch {
		case l.Progress != nil:
			bar.update(*l.Progress)
		case l.Error != "":
			return nil, errors.New(l.Error)
		case l.Result != nil:
			return l.Result, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("the tune's answer broke off: %w", err)
	}
	return nil, errors.New("the tune's answer ended without a result")
}

// bar draws progress on a terminal as one line redrawn in place; elsewhere
// (a log, CI) it prints a line as each size starts.
type bar struct {
	w     io.Writer
	tty   bool
	start time.Time
	mem   int
	drawn bool
}

func newBar(f *os.File) *bar {
	st, err := f.Stat()
	return &bar{w: f, tty: err == nil && st.Mode()&os.ModeCharDevice != 0, start: time.Now()}
}

const barWidth = 30

func (b *bar) update(p tune.Progress) {
	if !b.tty {
		if p.MemoryMB != b.mem {
			fmt.Fprintf(b.w, "measuring %d MB (%d of %d invocations done)\n", p.MemoryMB, p.Step-1, p.Steps)
		}
		b.mem = p.MemoryMB
		return
	}
	filled := barWidth * p.Step / max(p.Steps, 1)
	last := fmt.Sprintf("%.0f ms", p.MS)
	if p.Phase == tune.PhaseCold {
		last = fmt.Sprintf("%.0f ms, init %.0f ms", p.MS, p.InitMS)
	}
	fmt.Fprintf(b.w, "\r\033[K[%s%s] %3d%%  %d MB %s %d/%d (%s)  %s", strings.Repeat("#", filled), strings.Repeat(" ", barWidth-filled),
		100*p.Step/max(p.Steps, 1), p.MemoryMB, p.Phase, p.N, p.Of, last, time.Since(b.start).Round(time.Second))
	b.drawn = true
}

func (b *bar) done() {
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
	}
}
