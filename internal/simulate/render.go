package simulate

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// WriteJSON prints the report as exactly one JSON object.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable prints the report as a table.
func WriteTable(w io.Writer, r *Report) error {
	fmt.Fprintf(w, "%d functions, %d invocations\n\n", r.Functions, r.Invocations)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "POLICY\tCOLD STARTS\tCOLD %\tAPP COLD % p75\tWASTED GB-s\tvs fixed:10m\tPRE-WARMS\tUNUSED\t")
	for _, p := range r.Policies {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.0f\t%.2f\t%d\t%d\t\n", p.Policy, p.ColdStarts, p.ColdStartPct,
			p.AppColdStartPctP75, p.WastedMemoryGBs, p.WastedVsFixed10m, p.Prewarms, p.PrewarmsUnused)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\n(app cold % p75: the 75th percentile over functions of each one's cold-start percentage;\n wasted: memory × time of instances warm while idle)")
	return nil
}

// WriteChart draws one point per policy: the 75th-percentile app cold-start
// percentage against wasted memory (lower left is better), as "svg" or "png".
func WriteChart(w io.Writer, r *Report, format string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("keep-alive policies: %d functions, %d invocations", r.Functions, r.Invocations)
	p.X.Label.Text = "wasted memory (GB-s, idle and warm)"
	p.Y.Label.Text = "app cold-start % (p75)"
	p.Add(plotter.NewGrid())
	for i, pr := range r.Policies {
		xy := plotter.XYs{{X: pr.WastedMemoryGBs, Y: pr.AppColdStartPctP75}}
		s, err := plotter.NewScatter(xy)
		if err != nil {
			return err
		}
		s.GlyphStyle.Radius = vg.Points(4)
		s.GlyphStyle.Shape = draw.CircleGlyph{}
		s.GlyphStyle.Color = plotutil.Color(i)
		p.Add(s)
		labels, err := plotter.NewLabels(plotter.XYLabels{XYs: xy, Labels: []string{" " + pr.Policy}})
		if err != nil {
			return err
		}
		p.Add(labels)
		p.Legend.Add(pr.Policy, s)
	}
	p.X.Min = 0
	p.Y.Min = 0
	p.Legend.Top = true
	const wd, ht = 18 * vg.Centimeter, 12 * vg.Centimeter
	switch format {
	case "svg":
		c := vgsvg.New(wd, ht)
		p.Draw(draw.New(c))
		_, err := c.WriteTo(w)
		return err
	case "png":
		c := vgimg.PngCanvas{Canvas: vgimg.New(wd, ht)}
		p.Draw(draw.New(c))
		_, err := c.WriteTo(w)
		return err
	}
	return fmt.Errorf("unknown chart format %q", format)
}
