package simulate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// Policies are online: a decision made at t depends only on what happened
// before t. Changing the future of a trace — dropping, moving and adding
// arrivals after a cut — must leave every earlier decision as it was.
func TestDecisionsNeverSeeTheFuture(t *testing.T) {
	tr := smallTrace(40, 7)
	pols, err := ParsePolicies("fixed:10m,hybrid,adaptive")
	if err != nil {
		t.Fatal(err)
	}
	cut := 9 * time.Hour
	checked := 0
	for i := range tr.Functions {
		f := &tr.Functions[i]
		arr := f.Expand(nil)
		if len(arr) < 20 {
			continue
		}
		// The changed future: every other arrival after the cut dropped, the
		// rest shifted, and a burst added.
		var changed []Arrival
		for j, a := range arr {
			switch {
			case a.At < cut:
				changed = append(changed, a)
			case j%2 == 0:
				changed = append(changed, Arrival{At: a.At + 17*time.Second, Duration: 3 * a.Duration})
			}
		}
		for k := 0; k < 5; k++ {
			changed = append(changed, Arrival{At: cut + time.Hour + time.Duration(k)*time.Second, Duration: time.Minute})
		}
		sort.Slice(changed, func(a, b int) bool { return changed[a].At < changed[b].At })
		for _, p := range pols {
			before := decisionsBefore(f, arr, p, tr, cut)
			after := decisionsBefore(f, changed, p, tr, cut)
			if len(before) == 0 {
				t.Fatalf("%s %s: no decision before the cut", p.Name, f.Name)
			}
			if !reflect.DeepEqual(before, after) {
				t.Fatalf("%s %s: a decision before the cut changed with the future (%d vs %d decisions)", p.Name, f.Name, len(before), len(after))
			}
			checked++
		}
	}
	if checked < 30 {
		t.Fatalf("only %d function×policy pairs checked", checked)
	}
}

func decisionsBefore(f *Function, arr []Arrival, p Policy, tr *Trace, cut time.Duration) []Decision {
	var out []Decision
	simulateOne(f, arr, p, tr.Length, tr.MeanMemoryMB(), func(d Decision) {
		if d.At < cut {
			out = append(out, d)
		}
	})
	return out
}

// One request per instance: overlapping invocations need more instances,
// and a later one reuses a warm instance.
func TestOverlapNeedsInstances(t *testing.T) {
	f := &Function{Name: "f", MemoryMB: 1024, Init: time.Second, Arrivals: []Arrival{
		{At: 0, Duration: 10 * time.Second},
		{At: time.Second, Duration: 10 * time.Second},
		{At: 30 * time.Second, Duration: time.Second},
		{At: 31 * time.Second, Duration: time.Second},
	}}
	pols, _ := ParsePolicies("fixed:10m")
	r := simulateOne(f, f.Expand(nil), pols[0], time.Hour, 1024, nil)
	if r.Invocations != 4 || r.ColdStarts != 2 {
		t.Fatalf("%+v: want 4 invocations, 2 cold starts", r)
	}
	// The request at 30 s takes the most recently freed instance (idle
	// 12–30 s), the one at 31 s the same one again as it frees; the other,
	// idle since 11 s, and then that one, since 32 s, stop after 10 minutes.
	want := 18 + 600 + 600.0
	if got := r.WastedMBs / 1024; got < want-1 || got > want+1 {
		t.Fatalf("wasted %.1f GB-s, want %.1f", got, want)
	}
}

const sampler = "HashFunction,HashApp,HashOwner,minute_1,minute_2,minute_3\nf1,a1,o1,1,0,2\nf2,a2,o2,0,0,1\n"
const original = "HashOwner,HashApp,HashFunction,Trigger,3,1,2\no1,a1,f1,http,2,1,0\no2,a2,f2,timer,1,0,0\n"

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadAzureBothSchemas(t *testing.T) {
	dir := t.TempDir()
	durs := writeFile(t, dir, "run.csv", "HashOwner,HashApp,HashFunction,Average,Count\no1,a1,f1,2500,3\n")
	mem := writeFile(t, dir, "mem.csv", "HashOwner,HashApp,SampleCount,AverageAllocatedMb\no1,a1,9,300.4\n")
	var got []*Trace
	for _, body := range []string{sampler, original} {
		tr, err := ReadAzure(AzureFiles{Invocations: writeFile(t, dir, "inv.csv", body), Durations: durs, Memory: mem}, 1, DefaultInit)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, tr)
	}
	for _, tr := range got {
		if len(tr.Functions) != 2 || tr.Length != 3*time.Minute {
			t.Fatalf("trace %+v", tr)
		}
		f1, f2 := tr.Functions[0], tr.Functions[1]
		if !reflect.DeepEqual(f1.PerMinute, []int32{1, 0, 2}) || f1.Duration != 2500*time.Millisecond || f1.MemoryMB != 300 {
			t.Fatalf("f1 %+v", f1)
		}
		if f2.Duration != DefaultDuration || f2.MemoryMB != DefaultMemoryMB || f2.Invocations() != 1 {
			t.Fatalf("f2 %+v", f2)
		}
	}
	if !reflect.DeepEqual(got[0].Functions[0].Expand(nil), got[1].Functions[0].Expand(nil)) {
		t.Fatal("the two schemas gave different arrivals")
	}
	// Two invocations in minute 3, spread evenly: 30 s apart.
	a := got[0].Functions[0].Expand(nil)
	if len(a) != 3 || a[2].At-a[1].At != 30*time.Second || a[1].At < 2*time.Minute || a[2].At >= 3*time.Minute {
		t.Fatalf("arrivals %v", a)
	}
}

func TestReadAzureRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"no ids":       "HashFunction,minute_1\nf,1\n",
		"no minutes":   "HashOwner,HashApp,HashFunction\no,a,f\n",
		"bad count":    "HashOwner,HashApp,HashFunction,1\no,a,f,-3\n",
		"not a number": "HashOwner,HashApp,HashFunction,1\no,a,f,lots\n",
		"ragged":       "HashOwner,HashApp,HashFunction,1,2\no,a,f,1\n",
	} {
		if _, err := ReadAzure(AzureFiles{Invocations: writeFile(t, dir, "x.csv", body)}, 1, DefaultInit); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := ReadAzure(AzureFiles{Invocations: filepath.Join(dir, "missing.csv")}, 1, DefaultInit); err == nil {
		t.Error("a missing file: no error")
	}
}

func TestSeedPlacesArrivals(t *testing.T) {
	mk := func(seed int64) []Arrival {
		tr := &Trace{Functions: []Function{{Name: "f", PerMinute: []int32{1, 1}, Duration: time.Second}}}
		tr.Place(seed)
		return tr.Functions[0].Expand(nil)
	}
	if !reflect.DeepEqual(mk(3), mk(3)) {
		t.Fatal("the same seed placed arrivals differently")
	}
	if reflect.DeepEqual(mk(3), mk(4)) {
		t.Fatal("another seed placed arrivals the same")
	}
	if a := mk(3); a[1].At-a[0].At != time.Minute {
		t.Fatalf("one a minute should stay a minute apart: %v", a)
	}
}

// The JSON is exactly the documented shape, and fixed:10m is the baseline
// even when it is not asked for.
func TestReportJSONShape(t *testing.T) {
	tr := smallTrace(40, 3)
	pols, _ := ParsePolicies("hybrid,adaptive,keep_warm:1")
	rep := Run(tr, Options{Policies: pols})
	var buf bytes.Buffer
	if err := WriteJSON(&buf, rep); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if keys(m) != "functions,invocations,policies" {
		t.Fatalf("top-level keys %s", keys(m))
	}
	ps := m["policies"].([]any)
	if len(ps) != 3 {
		t.Fatalf("%d policies, want the 3 asked for", len(ps))
	}
	want := "app_cold_start_pct_p75,cold_start_pct,cold_starts,invocations,policy,prewarms,prewarms_unused,wasted_memory_gb_s,wasted_memory_vs_fixed_10m"
	for _, p := range ps {
		if k := keys(p.(map[string]any)); k != want {
			t.Fatalf("policy keys %s", k)
		}
	}
	for _, p := range rep.Policies {
		if p.Invocations != rep.Invocations || p.WastedVsFixed10m <= 0 {
			t.Fatalf("%+v", p)
		}
	}
	rep2 := Run(tr, Options{Policies: append(pols, mustPolicy(t, "fixed:10m"))})
	if r := rep2.Policies[3].WastedVsFixed10m; r != 1 {
		t.Fatalf("fixed:10m against itself: %v", r)
	}
	if rep2.Policies[0].WastedVsFixed10m != rep.Policies[0].WastedVsFixed10m {
		t.Fatal("the baseline differs when asked for")
	}
}

func mustPolicy(t *testing.T, s string) Policy {
	p, err := ParsePolicies(s)
	if err != nil {
		t.Fatal(err)
	}
	return p[0]
}

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

func TestBudgetBoundsIdleMemory(t *testing.T) {
	tr := smallTrace(60, 5)
	pols, _ := ParsePolicies("fixed:1h")
	free := Run(tr, Options{Policies: pols})
	tight := Run(tr, Options{Policies: pols, BudgetMB: 2048})
	if tight.Policies[0].WastedMemoryGBs >= free.Policies[0].WastedMemoryGBs {
		t.Fatalf("a 2 GB budget wasted %.0f GB-s, no budget %.0f", tight.Policies[0].WastedMemoryGBs, free.Policies[0].WastedMemoryGBs)
	}
	if tight.Policies[0].ColdStarts < free.Policies[0].ColdStarts {
		t.Fatal("evicting made fewer cold starts")
	}
}

func TestParsePoliciesAndSize(t *testing.T) {
	if _, err := ParsePolicies("fixed:10m,lru"); err == nil || !strings.Contains(err.Error(), "allowed") {
		t.Fatalf("err %v", err)
	}
	if _, err := ParsePolicies("keep_warm:-1"); err == nil {
		t.Fatal("keep_warm:-1 accepted")
	}
	for in, want := range map[string]int{"64GB": 65536, "512MB": 512, "1.5GB": 1536, "2048": 2048, "1TB": 1 << 20} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0GB", "-1GB", "lots", "1e40GB", "NaN"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q): no error", bad)
		}
	}
}

// The generator follows the published shares it claims (docs/keepalive.md).
func TestGeneratorShares(t *testing.T) {
	tr := Generate(3000, 11, DefaultInit)
	hourly, perMinute, n := 0, 0, 0
	for i := range tr.Functions {
		c := tr.Functions[i].Invocations()
		n++
		if c <= 24 {
			hourly++
		}
		if c <= 1440 {
			perMinute++
		}
	}
	h, m := float64(hourly)/float64(n), float64(perMinute)/float64(n)
	if h < 0.40 || h > 0.52 || m < 0.76 || m > 0.86 {
		t.Fatalf("at most hourly %.2f (paper 0.45), at most per minute %.2f (paper 0.81)", h, m)
	}
}

// smallTrace is a generated trace without its busiest functions, so tests
// under the race detector stay quick.
func smallTrace(n int, seed int64) *Trace {
	tr := Generate(n, seed, DefaultInit)
	fs := tr.Functions[:0]
	for _, f := range tr.Functions {
		if f.Invocations() <= 3000 {
			fs = append(fs, f)
		}
	}
	tr.Functions = fs
	return tr
}
