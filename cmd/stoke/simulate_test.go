package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSimulateCommand runs the real binary on a small Azure-format trace.
func TestSimulateCommand(t *testing.T) {
	bin, _ := build(t)
	dir := t.TempDir()
	inv := filepath.Join(dir, "inv.csv")
	body := "HashFunction,HashApp,HashOwner,minute_1,minute_2,minute_3,minute_4\nf1,a1,o1,3,0,0,2\nf2,a2,o2,1,1,1,1\n"
	if err := os.WriteFile(inv, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	chart := filepath.Join(dir, "pareto.svg")
	out, errOut, err := runStoke(t, bin, dir, "simulate", "--invocations", inv, "--policy", "fixed:10m,hybrid,adaptive", "--format", "json", "--out", chart)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, errOut)
	}
	var rep struct {
		Functions, Invocations int
		Policies               []struct {
			Policy     string  `json:"policy"`
			ColdStarts int     `json:"cold_starts"`
			Ratio      float64 `json:"wasted_memory_vs_fixed_10m"`
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Functions != 2 || rep.Invocations != 9 || len(rep.Policies) != 3 || rep.Policies[0].Ratio != 1 {
		t.Fatalf("report %+v", rep)
	}
	// f1's three invocations in minute 1 overlap (1 s each, 20 s apart: no);
	// at least each function's first is cold.
	if c := rep.Policies[0].ColdStarts; c < 2 || c > 9 {
		t.Fatalf("fixed:10m cold starts %d", c)
	}
	if b, err := os.ReadFile(chart); err != nil || !strings.Contains(string(b), "<svg") {
		t.Fatalf("chart: %v", err)
	}
	if _, errOut, err := runStoke(t, bin, dir, "simulate", "--invocations", inv, "--policy", "lru"); err == nil || !strings.Contains(errOut, "allowed") {
		t.Fatalf("--policy lru: %v %s", err, errOut)
	}
	help, _, _ := runStoke(t, bin, dir, "simulate", "--help")
	for _, w := range []string{"--invocations", "--durations", "--memory", "--policy", "--memory-budget", "--seed", "--format", "--out", "--from-records", "--since", "CC BY 4.0"} {
		if !strings.Contains(help, w) {
			t.Errorf("--help lacks %s", w)
		}
	}
}
