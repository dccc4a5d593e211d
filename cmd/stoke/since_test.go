package main

import (
	"testing"
	"time"
)

// --since takes days (the docs' `stoke simulate --from-records all --since
// 7d`) as well as Go durations, and refuses anything else.
func TestParseWindow(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "0d": 0, "2d30m": 48*time.Hour + 30*time.Minute,
		"36h": 36 * time.Hour, "90m": 90 * time.Minute, "-1h": -time.Hour, // a negative Go duration: the command refuses it
	} {
		if got, err := parseWindow(in); err != nil || got != want {
			t.Errorf("parseWindow(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"d", "7", "-1d", "+1d", "1.5d", "7days", "1d-1h", "1d+1h", "1dd", "99999999d", "7 d", ""} {
		if got, err := parseWindow(in); err == nil {
			t.Errorf("parseWindow(%q) = %v, want an error", in, got)
		}
	}
	var w window
	if err := w.Set("7d"); err != nil || w.String() != "168h" || w.Type() != "duration" {
		t.Errorf("window 7d: %v %s %s", err, w.String(), w.Type())
	}
	if z := window(0); z.String() != "0" { // pflag shows no default for "0"
		t.Errorf("no window prints %q", z.String())
	}
}
