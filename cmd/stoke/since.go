package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stokehq/stoke/internal/config"
)

// window is a --since flag: a Go duration (36h, 90m) or whole days with an
// optional rest (7d, 1d12h). A window of records is most often said in days,
// and time.ParseDuration has no unit for them: `--since 7d`, as the docs
// write it, was refused.
type window time.Duration

func (w *window) Set(s string) error {
	d, err := parseWindow(s)
	if err != nil {
		return err
	}
	*w = window(d)
	return nil
}

// String is "0" for no window, so that --help shows no default for it.
func (w *window) String() string {
	if *w == 0 {
		return "0"
	}
	return config.FormatDuration(time.Duration(*w))
}

func (w *window) Type() string { return "duration" }

// maxWindowDays bounds the days so that the sum cannot overflow a
// time.Duration (about 292 years).
const maxWindowDays = 100 * 365

func parseWindow(s string) (time.Duration, error) {
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	bad := fmt.Errorf("%q is not a duration; allowed: e.g. 7d, 1d12h, 36h or 90m", s)
	n, err := strconv.Atoi(days)
	if err != nil || days == "" || days[0] == '+' || n < 0 || n > maxWindowDays {
		return 0, bad
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || rest[0] == '-' || rest[0] == '+' {
			return 0, bad
		}
		d += r
	}
	return d, nil
}
