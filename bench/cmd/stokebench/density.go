package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	flagDensitySteps = flag.String("density-steps", "1,10,50,100,250,500,750,1000", "density: keep_warm at each step")
	flagDensityPlain = flag.Int("density-plain-max", 50, "density: the plain-process baseline runs at the steps up to this many instances")
	flagDensityCold  = flag.Int("density-cold", 10, "density: cold starts measured at each step")
	// Each forked instance's PSS on this machine is ~11 MB (24 MB with one
	// fork per template; the template's pages are shared by all its forks),
	// a plain instance's ~52 MB: a step starts only with this much memory
	// per instance available, plus a margin for everyone else.
	flagDensityMB = flag.Int("density-need-mb", 16, "density: MemAvailable needed per forked instance before a step starts (plain: 4×)")
)

// densityRow is one step: N idle warm instances of the Django example at
// 128 MB, as forks of the template (Stoke's way) or as plain processes
// (Lambda's way: each imports Django itself).
type densityRow struct {
	mode             string
	n                int
	ready            time.Duration // stoke started → N instances idle
	totalPSS         float64       // MB: stoke and every process it runs
	instPSS, instUSS float64       // MB: the N instances, summed
	otherPSS         float64       // MB: templates, spare forks, stubs, the cold-start function
	stokeRSS         float64       // MB
	stokePSS         float64       // MB
	fds, threads     int           // stoke's
	cold             []time.Duration
	warm             []time.Duration
	skipped          string
}

// benchDensity: how many idle warm Django instances fit on this machine.
// For each step a fresh Stoke runs the Django + DRF example at 128 MB with
// keep_warm N (a restart per step, not a redeploy: a deploy of a new
// keep_warm starts the new version's instances before the old ones drain,
// which would double the memory at the last step); once all N are idle it
// reads every process's /proc/PID/smaps_rollup (PSS: shared pages counted
// pro rata, so the template's pages are divided among its forks), Stoke's
// own RSS, fds and threads, then times cold starts of a second function of
// the same app (keep_warm 0, max_instances 1) with the N instances up, and
// warm requests to the N. The baseline, at the first steps, is a plain
// process per instance (snapshot: false). Each step checks that Stoke left
// no process and no cgroup behind.
func benchDensity(ctx context.Context, e *env) error {
	python := "/usr/bin/python3"
	if err := exec.CommandContext(ctx, python, "-c", "import django, rest_framework").Run(); err != nil {
		return fmt.Errorf("%s lacks Django or DRF (apt-get install python3-django python3-djangorestframework): %v", python, err)
	}
	app := filepath.Join(e.root, "examples", "django-drf")
	dbDir := filepath.Join(e.dir, "densitydb")
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		return err
	}
	db := filepath.Join(dbDir, "django.sqlite3")
	migrate := exec.CommandContext(ctx, python, "manage.py", "migrate", "--noinput")
	migrate.Dir, migrate.Env = app, append(os.Environ(), "STOKE_DB_PATH="+db, "PYTHONDONTWRITEBYTECODE=1")
	if out, err := migrate.CombinedOutput(); err != nil {
		return fmt.Errorf("migrate: %v\n%s", err, out)
	}
	var steps []int
	for _, f := range strings.Split(*flagDensitySteps, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-density-steps: %q is not a positive number", f)
		}
		steps = append(steps, n)
	}
	printLimits()

	var rows []densityRow
	for _, n := range steps {
		for _, mode := range []string{"fork", "plain"} {
			if mode == "plain" && n > *flagDensityPlain {
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			need := float64(n * *flagDensityMB)
			if mode == "plain" {
				need *= 4
			}
			if avail := memAvailableMB(); avail < need+1024 {
				rows = append(rows, densityRow{mode: mode, n: n, skipped: fmt.Sprintf("MemAvailable %.0f MB < %.0f MB needed", avail, need+1024)})
				continue
			}
			r, err := densityStep(ctx, e, mode, n, app, python, dbDir, db)
			if err != nil {
				return fmt.Errorf("%s %d: %w", mode, n, err)
			}
			rows = append(rows, r)
			// The whole row as soon as it is measured: the table comes only
			// at the end of a run that may take an hour.
			fmt.Fprintf(os.Stderr, "density: %s %d done: ready in %v, total PSS %.0f MB, per instance PSS %.1f MB USS %.1f MB, others %.0f MB, Stoke RSS %.1f MB PSS %.1f MB, fds %d threads %d, cold p50 %s p99 %s (%d), warm p50 %s\n",
				mode, n, r.ready.Round(time.Millisecond), r.totalPSS, r.instPSS/float64(n), r.instUSS/float64(n), r.otherPSS,
				r.stokeRSS, r.stokePSS, r.fds, r.threads, ms(pct(r.cold, .5)), ms(pct(r.cold, .99)), len(r.cold), ms(pct(r.warm, .5)))
		}
	}

	fmt.Printf("Idle warm instances of examples/django-drf at 128 MB (GET /api/notes/); a fresh Stoke per row; memory read once all N are idle.\n")
	fmt.Printf("| instances | kind | ready after | total PSS (stoke + all it runs) | PSS per instance | USS per instance | templates, spares, stubs, cold fn (PSS) | Stoke RSS / PSS | Stoke fds / threads | cold start p50 / p99 (n) | warm p50 |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|---|\n")
	var verdict []string
	best := densityRow{}
	for _, r := range rows {
		if r.skipped != "" {
			fmt.Printf("| %d | %s | skipped: %s | | | | | | | | |\n", r.n, r.mode, r.skipped)
			continue
		}
		fmt.Printf("| %d | %s | %.1f s | %.0f MB | %.1f MB | %.1f MB | %.0f MB | %.1f / %.1f MB | %d / %d | %s / %s (%d) | %s |\n",
			r.n, r.mode, r.ready.Seconds(), r.totalPSS, r.instPSS/float64(r.n), r.instUSS/float64(r.n), r.otherPSS,
			r.stokeRSS, r.stokePSS, r.fds, r.threads, ms(pct(r.cold, .5)), ms(pct(r.cold, .99)), len(r.cold), ms(pct(r.warm, .5)))
		if r.mode == "fork" && r.n > best.n {
			best = r
		}
	}
	switch {
	case best.n < 1000:
		verdict = append(verdict, fmt.Sprintf("reached %d instances, not 1,000", best.n))
	default:
		if best.totalPSS > 16*1024 {
			verdict = append(verdict, fmt.Sprintf("total PSS at %d instances is %.0f MB (> 16 GB)", best.n, best.totalPSS))
		}
		if best.stokeRSS > 150 {
			verdict = append(verdict, fmt.Sprintf("Stoke's RSS at %d instances is %.1f MB (> 150 MB)", best.n, best.stokeRSS))
		}
	}
	if len(verdict) == 0 {
		fmt.Printf("target: ≥ 1,000 idle warm Django instances in ≤ 16 GB PSS, Stoke's RSS ≤ 150 MB: MET (%d instances: %.1f GB, Stoke %.1f MB)\n", best.n, best.totalPSS/1024, best.stokeRSS)
	} else {
		fmt.Printf("target: ≥ 1,000 idle warm Django instances in ≤ 16 GB PSS, Stoke's RSS ≤ 150 MB: MISSED: %s\n", strings.Join(verdict, "; "))
	}
	return nil
}

func densityStep(ctx context.Context, e *env, mode string, n int, app, python, dbDir, db string) (densityRow, error) {
	r := densityRow{mode: mode, n: n}
	snapshot := "true"
	if mode == "plain" {
		snapshot = "false"
	}
	fn := func(name string, keepWarm, maxInst int, idle, snap string) string {
		return fmt.Sprintf(`  %s:
    runtime: python-wsgi
    cwd: %s
    python: %s
    django_settings: mysite.settings
    snapshot: %s
    memory: 128
    max_instances: %d
    keep_warm: %d
    idle_timeout: %s
    timeout: 60s
    init_timeout: 15m
    readiness: {path: /%s/api/notes/}
    routes: [/%s/*]
    writable: [%s]
    env: {STOKE_DB_PATH: %s, URL_PREFIX: %s/}
`, name, app, python, snap, maxInst, keepWarm, idle, name, name, dbDir, db, name)
	}
	// The cold-start function is always a fork of its template: what a new
	// instance costs while N others sit idle.
	cfg := "gateway:\n  timeout: 120s\nfunctions:\n" + fn("d", n, n, "1h", snapshot) + fn("c", 0, 1, "1ms", "true")
	t0 := time.Now()
	s, err := e.startStokeWithin(ctx, fmt.Sprintf("density-%s-%d", mode, n), cfg, 20*time.Minute)
	if err != nil {
		return r, err
	}
	defer s.stopWith()
	s.keptWarm = map[string]bool{"d": true}
	// A deploy waits init_timeout for all keep_warm instances, and starting
	// 1,000 takes minutes on two cores (one template forks them one after
	// another): init_timeout is 15m here.
	if err := s.waitInstances(ctx, "d", n, 20*time.Minute); err != nil {
		return r, err
	}
	r.ready = time.Since(t0)
	time.Sleep(2 * time.Second) // let the last starts' spare forks and stubs settle

	inst := map[int]bool{}
	for _, pid := range s.instancePids("d") {
		inst[pid] = true
	}
	if len(inst) != n {
		return r, fmt.Errorf("%d instance pids listed, want %d", len(inst), n)
	}
	for _, pid := range descendants(s.pid) {
		m := smaps(pid)
		if m[1] < 0 {
			continue // exited meanwhile
		}
		r.totalPSS += m[1]
		if inst[pid] {
			r.instPSS += m[1]
			r.instUSS += m[0]
		} else {
			r.otherPSS += m[1]
		}
	}
	sm := smaps(s.pid)
	r.stokePSS = sm[1]
	r.totalPSS += sm[1]
	r.stokeRSS = status(s.pid, "VmRSS")
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.pid)); err == nil {
		r.fds = len(ents)
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", s.pid)); err == nil {
		r.threads = len(ents)
	}

	client := &http.Client{Timeout: 110 * time.Second}
	get := func(name string) (time.Duration, bool, error) {
		t := time.Now()
		resp, err := client.Get(fmt.Sprintf("%s/%s/api/notes/", s.gw, name))
		if err != nil {
			return 0, false, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(t)
		if err != nil {
			return 0, false, err
		}
		if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "[") {
			return 0, false, fmt.Errorf("%s: %s %.200s", name, resp.Status, b)
		}
		return d, resp.Header.Get("X-Stoke-Cold") == "true", nil
	}
	for i := 0; i < *flagDensityCold+1; i++ {
		if err := s.waitQuiet(ctx, 30*time.Second, 0); err != nil {
			return r, err
		}
		time.Sleep(50 * time.Millisecond)
		d, cold, err := get("c")
		if err != nil {
			return r, err
		}
		if cold && i > 0 { // the first warms the page cache
			r.cold = append(r.cold, d)
		}
		for k := 0; k < 3; k++ {
			d, cold, err := get("d")
			if err != nil {
				return r, err
			}
			if cold {
				return r, fmt.Errorf("a request to d was cold with %d kept warm", n)
			}
			r.warm = append(r.warm, d)
		}
	}
	return r, nil
}

// descendants lists every process below pid (children, their children, …).
func descendants(pid int) []int {
	kids := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if pp := ppid(p); pp > 0 {
			kids[pp] = append(kids[pp], p)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range kids[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	sort.Ints(out)
	return out
}

func memAvailableMB() float64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemAvailable:"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return kb / 1024
		}
	}
	return 0
}

// printLimits prints the limits 1,000 instances come near: this process's
// open files (Stoke inherits them; Go raises the soft limit to the hard
// one), the machine's pids and threads.
func printLimits() {
	var nofile syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile)
	read := func(p string) string {
		b, _ := os.ReadFile(p)
		return strings.TrimSpace(string(b))
	}
	fmt.Printf("limits: open files %d (hard %d), kernel.pid_max %s, kernel.threads-max %s, MemAvailable %.0f MB\n",
		nofile.Cur, nofile.Max, read("/proc/sys/kernel/pid_max"), read("/proc/sys/kernel/threads-max"), memAvailableMB())
}
