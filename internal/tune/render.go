package tune

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/stokehq/stoke/internal/cost"
)

// WriteText prints the report as `stoke tune` does: what was measured, the
// table, and each strategy's recommendation with its reason.
func WriteText(w io.Writer, r *Report) error {
	p := r.Plan
	req := p.Method + " " + p.Path
	if len(p.Event) > 0 {
		req = "the event file"
	}
	initNote := "init billed"
	if !r.Prices.BillInit {
		initNote = "init not billed"
	}
	fmt.Fprintf(w, "%s (version %s, deployed at %d MB): %d cold starts and %d warm invocations per size with %s; billed in %s steps, %s\n\n",
		r.Function, r.Version, r.LiveMemoryMB, p.Cold, p.Invocations, req, r.Prices.Granularity, initNote)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "MEMORY\tCOLD p50\tCOLD p95\tINIT p50\tWARM p50\tWARM p95\tWARM p99\tBILLED\tPER 1M\tPER 1M (%s COLD)\t\n", pct(p.ColdRate))
	for _, s := range r.Sizes {
		mark := ""
		if s.MemoryMB == r.LiveMemoryMB {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s%d MB\t%s\t%s\t%s\t%s\t%s\t%s\t%d ms\t%s\t%s\t\n", mark, s.MemoryMB,
			msOrDash(s.ColdP50MS, len(s.Cold)), msOrDash(s.ColdP95MS, len(s.Cold)), msOrDash(s.InitP50MS, len(s.Cold)),
			msStr(s.WarmP50MS), msStr(s.WarmP95MS), msStr(s.WarmP99MS), s.BilledMS,
			cost.Dollars(s.CostPer1M), cost.Dollars(s.CostPer1MAtColdRate))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n(* as deployed; cold: waiting for the instance's start plus the invocation; warm: the invocation; billed: median warm)\n\n")
	for i, rec := range r.Recommendations {
		name := rec.Strategy
		if rec.Strategy == cost.StrategyBalanced {
			name = fmt.Sprintf("balanced (weight %.2g)", rec.Weight)
		}
		if i == 0 {
			fmt.Fprintf(w, "Recommended by %s: %d MB. %s\n", name, rec.MemoryMB, rec.Why)
			if len(r.Recommendations) > 1 {
				fmt.Fprintln(w)
			}
			continue
		}
		fmt.Fprintf(w, "  by %s: %d MB. %s\n", name, rec.MemoryMB, rec.Why)
	}
	return nil
}

func msOrDash(ms float64, n int) string {
	if n == 0 {
		return "-"
	}
	return msStr(ms)
}

// Render returns the report in the format a file name's extension names:
// .json (every number and sample), .svg or .png (the chart), .html (the
// chart and the table in one page). The caller writes the file: whole or
// not at all, since a chart cut off by an error is worse than none.
func Render(name string, r *Report) ([]byte, error) {
	var buf bytes.Buffer
	var err error
	switch ext := strings.ToLower(filepath.Ext(name)); ext {
	case ".json":
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		err = enc.Encode(r)
	case ".svg", ".png":
		err = WriteChart(&buf, r, ext[1:])
	case ".html", ".htm":
		err = WriteHTML(&buf, r)
	default:
		return nil, fmt.Errorf("--out %s: unknown format %q; allowed: .json, .html, .svg, .png", name, ext)
	}
	if err != nil {
		return nil, fmt.Errorf("rendering %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// Chart size: two panels side by side.
const (
	chartW = 26 * vg.Centimeter
	chartH = 10 * vg.Centimeter
)

// WriteChart draws duration (log scale: a cold start is often 100× a warm
// invocation) and cost per 1M requests against memory, cold and warm, as
// "svg" or "png".
func WriteChart(w io.Writer, r *Report, format string) error {
	dur := plot.New()
	dur.Title.Text = r.Function + ": duration"
	dur.X.Label.Text = "memory (MB)"
	dur.Y.Label.Text = "ms (log scale)"
	dur.Y.Scale = plot.LogScale{}
	dur.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	dur.Legend.Top = true
	var lines []any
	if r.Plan.Cold > 0 {
		lines = append(lines, "cold p50", xy(r, func(s Size) float64 { return s.ColdP50MS }))
	}
	lines = append(lines,
		"warm p50", xy(r, func(s Size) float64 { return s.WarmP50MS }),
		"warm p99", xy(r, func(s Size) float64 { return s.WarmP99MS }))
	if err := plotutil.AddLinePoints(dur, lines...); err != nil {
		return err
	}

	money := plot.New()
	money.Title.Text = r.Function + ": cost per 1M requests"
	money.X.Label.Text = "memory (MB)"
	money.Y.Label.Text = "$"
	money.Y.Min = 0
	// Bottom right: the cost lines sit high above a y axis that starts at 0.
	lines = []any{"warm", xy(r, func(s Size) float64 { return s.CostPer1M })}
	if r.Plan.Cold > 0 && r.Plan.ColdRate > 0 {
		lines = append(lines, pct(r.Plan.ColdRate)+" cold", xy(r, func(s Size) float64 { return s.CostPer1MAtColdRate }))
	}
	if err := plotutil.AddLinePoints(money, lines...); err != nil {
		return err
	}

	dur.X.Tick.Marker, money.X.Tick.Marker = memTicks(r), memTicks(r)

	var c vg.CanvasWriterTo
	switch format {
	case "svg":
		c = vgsvg.New(chartW, chartH)
	case "png":
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(chartW, chartH), vgimg.UseDPI(144))}
	default:
		return fmt.Errorf("chart format %q; allowed: svg, png", format)
	}
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Centimeter, PadTop: vg.Millimeter * 3, PadBottom: vg.Millimeter * 3,
		PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 3}
	cs := plot.Align([][]*plot.Plot{{dur, money}}, tiles, draw.New(c))
	dur.Draw(cs[0][0])
	money.Draw(cs[0][1])
	_, err := c.WriteTo(w)
	return err
}

// memTicks labels the x axis with the sizes measured, in whole MB, or
// with round numbers when there are too many to label.
func memTicks(r *Report) plot.Ticker {
	if len(r.Sizes) > 8 {
		return plot.TickerFunc(func(lo, hi float64) []plot.Tick {
			ts := plot.DefaultTicks{}.Ticks(lo, hi)
			for i := range ts {
				if ts[i].Label != "" {
					ts[i].Label = fmt.Sprintf("%.0f", ts[i].Value)
				}
			}
			return ts
		})
	}
	ts := make(plot.ConstantTicks, len(r.Sizes))
	for i, s := range r.Sizes {
		ts[i] = plot.Tick{Value: float64(s.MemoryMB), Label: fmt.Sprint(s.MemoryMB)}
	}
	return ts
}

// xy is one line of the chart; values are kept above 0 for the log scale.
func xy(r *Report, f func(Size) float64) plotter.XYs {
	pts := make(plotter.XYs, len(r.Sizes))
	for i, s := range r.Sizes {
		pts[i].X, pts[i].Y = float64(s.MemoryMB), max(f(s), 1e-3)
	}
	return pts
}

var page = template.Must(template.New("tune").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stoke tune {{.R.Function}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{padding:.3em .8em;text-align:right;border-bottom:1px solid #ddd}
th:first-child,td:first-child{text-align:left}
tr.live td{font-weight:600}
svg{max-width:100%;height:auto}
.why{margin:.3em 0}
</style></head><body>
<h1>stoke tune {{.R.Function}}</h1>
<p>Version {{.R.Version}}, deployed at {{.R.LiveMemoryMB}} MB. {{.R.Plan.Cold}} cold starts and {{.R.Plan.Invocations}} warm invocations per size;
billed in {{.R.Prices.Granularity}} steps. Measured {{.R.Started.Format "2006-01-02 15:04:05 MST"}}.</p>
{{range $i, $rec := .R.Recommendations}}<p class="why">{{if eq $i 0}}<strong>Recommended by {{$rec.Strategy}}: {{$rec.MemoryMB}} MB.</strong>{{else}}By {{$rec.Strategy}}: {{$rec.MemoryMB}} MB.{{end}} {{$rec.Why}}</p>
{{end}}
{{.SVG}}
<table>
<tr><th>memory</th><th>cold p50</th><th>cold p95</th><th>init p50</th><th>warm p50</th><th>warm p95</th><th>warm p99</th><th>billed</th><th>per 1M</th><th>per 1M ({{.Rate}} cold)</th></tr>
{{range .Rows}}<tr{{if .Live}} class="live"{{end}}><td>{{.Memory}}</td>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
<p>Cold: waiting for the instance's start plus the invocation. Warm: the invocation. Billed: median warm duration rounded up.
{{if .R.Plan.ColdRate}}Recommendations weigh in {{.Rate}} cold starts.{{end}}</p>
</body></html>
`))

// WriteHTML writes a small self-contained page: the chart inline and the table.
func WriteHTML(w io.Writer, r *Report) error {
	var svg bytes.Buffer
	if err := WriteChart(&svg, r, "svg"); err != nil {
		return err
	}
	// Inline SVG takes no XML declaration.
	s := svg.String()
	if i := strings.Index(s, "<svg"); i > 0 {
		s = s[i:]
	}
	type row struct {
		Memory string
		Live   bool
		Cells  []string
	}
	var rows []row
	for _, z := range r.Sizes {
		rows = append(rows, row{Memory: fmt.Sprintf("%d MB", z.MemoryMB), Live: z.MemoryMB == r.LiveMemoryMB, Cells: []string{
			msOrDash(z.ColdP50MS, len(z.Cold)), msOrDash(z.ColdP95MS, len(z.Cold)), msOrDash(z.InitP50MS, len(z.Cold)),
			msStr(z.WarmP50MS), msStr(z.WarmP95MS), msStr(z.WarmP99MS), fmt.Sprintf("%d ms", z.BilledMS),
			cost.Dollars(z.CostPer1M), cost.Dollars(z.CostPer1MAtColdRate),
		}})
	}
	return page.Execute(w, map[string]any{
		"R": r, "Rows": rows, "Rate": pct(r.Plan.ColdRate),
		"SVG": template.HTML(s), // our own renderer's output, not user input
	})
}
