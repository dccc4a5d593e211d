package trace

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// Waterfall writes t for a terminal: a line saying what it was, then a bar
// per span placed and scaled on the root (gateway) span, width cells for the
// whole root, with the span's duration:
//
//	gateway  ████████████████████  23.1 ms
//	cache    █                      0.0 ms  (uri-miss)
//	queue    ███████████████       17.9 ms
//	init      ██████████████       16.8 ms  (cold)
//	invoke                  ████    4.2 ms
func Waterfall(w io.Writer, t *Trace, width int) error {
	if len(t.Spans) == 0 {
		_, err := fmt.Fprintf(w, "request %s: no spans\n", t.RequestID)
		return err
	}
	width = max(width, 10)
	root := t.Spans[0]
	total := root.End.Sub(root.Start).Seconds()
	temp := "warm"
	if t.Cold {
		temp = "cold"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "request %s  trace %s\n%s:%s  %s  status %d\n\n", t.RequestID, t.TraceID, t.Function, t.Version, temp, t.Status)
	nameW := 0
	for _, s := range t.Spans {
		nameW = max(nameW, len(s.Name))
	}
	for _, s := range t.Spans {
		from, to := 0, width
		if total > 0 {
			from = cell(s.Start.Sub(root.Start).Seconds()/total, width, math.Floor)
			to = cell(s.End.Sub(root.Start).Seconds()/total, width, math.Round)
		}
		// Every span shows, however short; none spills past the root.
		from = min(from, width-1)
		to = min(max(to, from+1), width)
		fmt.Fprintf(&b, "%-*s  %s%s%s  %6.1f ms", nameW, s.Name,
			strings.Repeat(" ", from), strings.Repeat("█", to-from), strings.Repeat(" ", width-to), s.DurationMS)
		switch {
		case s.Error != "":
			fmt.Fprintf(&b, "  (%s)", s.Error)
		case s.Name == SpanInit:
			b.WriteString("  (cold)")
		case s.Name == SpanCache:
			fmt.Fprintf(&b, "  (%v)", s.Attributes["stoke.cache"])
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cell maps a fraction of the root's duration to a cell, clamped to the bar.
func cell(frac float64, width int, round func(float64) float64) int {
	return int(max(0, min(round(frac*float64(width)), float64(width))))
}
