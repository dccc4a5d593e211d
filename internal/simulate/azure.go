package simulate

import (
	"encoding/csv"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Defaults for what a trace does not say.
const (
	// DefaultMemoryMB is an instance's memory without a memory file (or for
	// an app missing from it): Stoke's and Lambda's default memory size.
	DefaultMemoryMB = 128
	// DefaultDuration is an invocation's duration without a durations file:
	// about the median of Azure functions' average execution time (Shahrad
	// et al. 2020, Fig. 7: half of the functions run under 1 s on average).
	DefaultDuration = time.Second
	// DefaultInit is a cold start's duration: Azure's trace does not record
	// it, so every function gets this one (--init).
	DefaultInit = time.Second
	// MaxFunctions bounds a trace file, so a hostile file cannot exhaust memory.
	MaxFunctions = 100_000
)

// AzureFiles names the Azure Functions 2019 files of one day.
type AzureFiles struct {
	Invocations string // required
	Durations   string
	Memory      string
}

// ReadAzure reads an Azure Functions 2019 day: invocations per function per
// minute (the original schema HashOwner,HashApp,HashFunction,Trigger,1..1440
// or the sampler's HashFunction,HashApp,HashOwner,minute_1..minute_1440, by
// header name), each function's average duration and each app's average
// allocated memory. seed places arrivals within their minute (see Expand).
func ReadAzure(files AzureFiles, seed int64, init time.Duration) (*Trace, error) {
	tr, err := readInvocations(files.Invocations)
	if err != nil {
		return nil, err
	}
	durs := map[string]time.Duration{}
	if files.Durations != "" {
		if durs, err = readDurations(files.Durations); err != nil {
			return nil, err
		}
	}
	mems := map[string]int{}
	if files.Memory != "" {
		if mems, err = readMemory(files.Memory); err != nil {
			return nil, err
		}
	}
	for i := range tr.Functions {
		f := &tr.Functions[i]
		f.Duration = DefaultDuration
		if d, ok := durs[f.Name]; ok {
			f.Duration = d
		}
		f.MemoryMB = DefaultMemoryMB
		if m, ok := mems[f.App]; ok {
			f.MemoryMB = m
		}
		f.Init = init
	}
	tr.Place(seed)
	return tr, nil
}

// Place gives every function its phase within the minute from seed and its
// name, so a function's arrivals do not depend on the others'.
func (tr *Trace) Place(seed int64) {
	for i := range tr.Functions {
		f := &tr.Functions[i]
		h := fnv.New64a()
		fmt.Fprintf(h, "%d/%s", seed, f.Name)
		f.phase = float64(splitmix(h.Sum64())>>11) / (1 << 53)
	}
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// csvFile opens a CSV file and reads its header into a column index.
func csvFile(path string) (*os.File, *csv.Reader, map[string]int, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	r := csv.NewReader(f)
	r.ReuseRecord = true
	head, err := r.Read()
	if err != nil {
		f.Close()
		return nil, nil, nil, nil, fmt.Errorf("%s: reading the header: %w", path, err)
	}
	head = append([]string(nil), head...)
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	return f, r, col, head, nil
}

func need(path string, col map[string]int, names ...string) error {
	for _, n := range names {
		if _, ok := col[n]; !ok {
			return fmt.Errorf("%s: no %s column; want the Azure Functions 2019 schema (%s)", path, n, strings.Join(names, ","))
		}
	}
	return nil
}

func readInvocations(path string) (*Trace, error) {
	f, r, col, head, err := csvFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := need(path, col, "HashOwner", "HashApp", "HashFunction"); err != nil {
		return nil, err
	}
	// Minute columns: "1".."N" (original) or "minute_1".."minute_N" (sampler).
	type mcol struct{ idx, minute int }
	var mins []mcol
	for i, h := range head {
		h = strings.TrimSpace(h)
		n, err := strconv.Atoi(strings.TrimPrefix(h, "minute_"))
		if err == nil && n >= 1 && n <= 14*1440 {
			mins = append(mins, mcol{i, n})
		}
	}
	if len(mins) == 0 {
		return nil, fmt.Errorf("%s: no minute columns (1..1440 or minute_1..minute_1440)", path)
	}
	sort.Slice(mins, func(i, j int) bool { return mins[i].minute < mins[j].minute })
	last := mins[len(mins)-1].minute
	tr := &Trace{Length: time.Duration(last) * time.Minute}
	seen := map[string]int{}
	line := 1
	for {
		rec, err := r.Read()
		line++
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		owner, app, fn := rec[col["HashOwner"]], rec[col["HashApp"]], rec[col["HashFunction"]]
		name := owner + "/" + app + "/" + fn
		pm := make([]int32, last)
		for _, m := range mins {
			v := strings.TrimSpace(rec[m.idx])
			if v == "" {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 0 || n > 1_000_000 {
				return nil, fmt.Errorf("%s:%d: minute %d: %q is not a count of invocations (0 to 1000000)", path, line, m.minute, v)
			}
			pm[m.minute-1] += int32(n)
		}
		if i, ok := seen[name]; ok { // a function listed twice (two triggers): one function
			for k, n := range pm {
				tr.Functions[i].PerMinute[k] += n
			}
			continue
		}
		if len(tr.Functions) >= MaxFunctions {
			return nil, fmt.Errorf("%s: more than %d functions", path, MaxFunctions)
		}
		seen[name] = len(tr.Functions)
		tr.Functions = append(tr.Functions, Function{Name: name, App: owner + "/" + app, PerMinute: pm})
	}
	return tr, nil
}

// readDurations reads each function's Average (ms) from a durations file.
func readDurations(path string) (map[string]time.Duration, error) {
	ms, err := readColumn(path, []string{"HashOwner", "HashApp", "HashFunction"}, "Average", 24*3600*1000, "a duration in ms (0 to a day)")
	out := make(map[string]time.Duration, len(ms))
	for k, v := range ms {
		out[k] = time.Duration(v * float64(time.Millisecond))
	}
	return out, err
}

// readMemory reads each app's AverageAllocatedMb from a memory file.
func readMemory(path string) (map[string]int, error) {
	mbs, err := readColumn(path, []string{"HashOwner", "HashApp"}, "AverageAllocatedMb", 1<<20, "a size in MB")
	out := make(map[string]int, len(mbs))
	for k, v := range mbs {
		out[k] = max(1, int(math.Round(v)))
	}
	return out, err
}

// readColumn reads one number per row, 0 to hi, keyed by the key columns
// joined with "/"; what says what the number is, in errors.
func readColumn(path string, keys []string, column string, hi float64, what string) (map[string]float64, error) {
	f, r, col, _, err := csvFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := need(path, col, append(append([]string(nil), keys...), column)...); err != nil {
		return nil, err
	}
	out := map[string]float64{}
	parts := make([]string, len(keys))
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[col[column]]), 64)
		if err != nil || v < 0 || v > hi || math.IsNaN(v) {
			return nil, fmt.Errorf("%s:%d: %s %q is not %s", path, line, column, rec[col[column]], what)
		}
		for i, k := range keys {
			parts[i] = rec[col[k]]
		}
		out[strings.Join(parts, "/")] = v
	}
}

// ParseSize reads a memory size: 512MB, 64GB, 1.5TB (units of 1024), or MB
// without a unit.
func ParseSize(s string) (int, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mul := 1.0
	for _, u := range []struct {
		suf string
		m   float64
	}{{"TB", 1 << 20}, {"GB", 1 << 10}, {"MB", 1}, {"TIB", 1 << 20}, {"GIB", 1 << 10}, {"MIB", 1}} {
		if strings.HasSuffix(t, u.suf) {
			t, mul = strings.TrimSpace(strings.TrimSuffix(t, u.suf)), u.m
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || v*mul > 1<<30 || math.IsNaN(v) {
		return 0, fmt.Errorf("%q is not a memory size; allowed: a positive size like 512MB, 64GB, 1TB", s)
	}
	return int(math.Round(v * mul)), nil
}
