package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// benchDjango reproduces the seed's table (../shared/seed/README.md) with
// examples/django-drf: the cold start of GET /api/notes/ (request sent →
// response read, no instance running) at 128–1024 MB for a plain process
// start (the baseline: what Lambda does), a fork of the template
// (snapshot), and a fork with init_boost; warm p50 at each size; and the
// private memory of an idle forked instance against a plain one.
//
// "No instance" is had as in benchCold: max_instances 1, idle_timeout 1ms,
// and before every start the admin API lists no instance. The template is
// not an instance: it stays up, as it does in production.
// djangoProject is a Django project the benchmark serves: where it is,
// its settings, the request it times and what a good answer looks like.
type djangoProject struct {
	name     string // -django-projects
	dir      string // relative to the repository
	settings string
	path     string // GET <route prefix><path>: what is timed
	ready    string // the readiness path
	ok       func(body string) bool
	// noIsolation: also compare against the same functions not isolated.
	noIsolation bool
}

var djangoProjects = []djangoProject{
	{name: "example", dir: "examples/django-drf", settings: "mysite.settings", path: "/api/notes/", ready: "/api/notes/",
		ok: func(b string) bool { return strings.HasPrefix(b, "[") }, noIsolation: true},
	// bench/testdata/djangoshop: a project Stoke was not tuned for (no DRF;
	// sessions, CSRF, locale and GZip middleware; rendered templates).
	{name: "shop", dir: "bench/testdata/djangoshop", settings: "shop.settings", path: "/shop/?q=tea&in_stock=on", ready: "/shop/",
		ok: func(b string) bool { return strings.Contains(b, "<table>") && strings.Contains(b, "Darjeeling") }},
}

func benchDjango(ctx context.Context, e *env) error {
	want := map[string]bool{}
	for _, n := range strings.Split(*flagDjangoProjects, ",") {
		want[strings.TrimSpace(n)] = true
	}
	var failed []string
	for _, p := range djangoProjects {
		if !want[p.name] {
			continue
		}
		delete(want, p.name)
		fmt.Printf("\n=== django project %q (%s)\n", p.name, p.dir)
		if err := benchDjangoProject(ctx, e, p); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", p.name, err))
		}
	}
	for n := range want {
		failed = append(failed, fmt.Sprintf("unknown django project %q", n))
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

// djangoUp is how long a Stoke running the benchmark's Django functions may
// take to serve: it waits for every template (a Django import each, one
// after another: 15 of them took over a minute on the loaded 2-core VM).
const djangoUp = 5 * time.Minute

func benchDjangoProject(ctx context.Context, e *env, proj djangoProject) error {
	python := "/usr/bin/python3"
	if err := exec.CommandContext(ctx, python, "-c", "import django, rest_framework").Run(); err != nil {
		return fmt.Errorf("%s lacks Django or DRF (apt-get install python3-django python3-djangorestframework): %v", python, err)
	}
	app := filepath.Join(e.root, proj.dir)
	// The database in a directory the functions may write (an isolated
	// function's cwd is read-only).
	dbDir := filepath.Join(e.dir, "djangodb-"+proj.name)
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		return err
	}
	db := filepath.Join(dbDir, "django.sqlite3")
	migrate := exec.CommandContext(ctx, python, "manage.py", "migrate", "--noinput")
	migrate.Dir, migrate.Env = app, append(os.Environ(), "STOKE_DB_PATH="+db, "PYTHONDONTWRITEBYTECODE=1")
	if out, err := migrate.CombinedOutput(); err != nil {
		return fmt.Errorf("migrate: %v\n%s", err, out)
	}
	mems := []int{128, 256, 512, 768, 1024}
	seed := map[int]string{128: "33 s", 256: "15 s", 512: "8 s", 768: "4 s", 1024: "3 s"}
	seedWarm := map[int]string{128: "170 ms", 256: "71 ms", 512: "50 ms", 768: "20 ms", 1024: "–"}
	modes := []struct{ prefix, snapshot, boost string }{
		{"plain", "false", "false"}, {"snap", "true", "false"}, {"boost", "true", "true"},
	}
	var cfg strings.Builder
	cfg.WriteString("gateway:\n  timeout: 120s\nfunctions:\n")
	fn := func(name string, mem int, snapshot, boost string, keepWarm int, idle string) {
		fmt.Fprintf(&cfg, `  %s:
    runtime: python-wsgi
    cwd: %s
    python: %s
    django_settings: %s
    snapshot: %s
    init_boost: %s
    memory: %d
    max_instances: 1
    keep_warm: %d
    idle_timeout: %s
    timeout: 100s
    init_timeout: 100s
    readiness: {path: /%s%s}
    routes: [/%s/*]
    writable: [%s]
    env: {STOKE_DB_PATH: %s, URL_PREFIX: %s/}
`, name, app, python, proj.settings, snapshot, boost, mem, keepWarm, idle, name, proj.ready, name, dbDir, db, name)
	}
	for _, m := range mems {
		for _, md := range modes {
			fn(fmt.Sprintf("%s%d", md.prefix, m), m, md.snapshot, md.boost, 0, "1ms")
		}
		// The same-run warm baseline of "cold minus warm": a kept-warm
		// fork, asked between the cold starts.
		fn(fmt.Sprintf("warm%d", m), m, "true", "true", 1, "10m")
	}
	s, err := e.startStokeWithin(ctx, "django-"+proj.name, cfg.String(), djangoUp)
	if err != nil {
		return err
	}
	defer s.stopWith()
	s.keptWarm = map[string]bool{}
	for _, m := range mems {
		s.keptWarm[fmt.Sprintf("warm%d", m)] = true
	}
	// The same functions on a Stoke that does not isolate them: the
	// fork-snapshot cold starts of both, interleaved, are what isolation
	// costs a python cold start.
	var ns *stokeProc
	if proj.noIsolation {
		ns, err = e.startStokeWithin(ctx, "django-"+proj.name+"-plain", "sandbox: {isolation: false}\n"+cfg.String(), djangoUp)
		if err != nil {
			return err
		}
		defer ns.stopWith()
		ns.keptWarm = s.keptWarm
	}
	// -main-bin: the same functions on main's Stoke, interleaved: what this
	// build changes, in the same run.
	mainS, err := e.startMainStoke(ctx, "django-"+proj.name+"-main", cfg.String())
	if err != nil {
		return err
	}
	if mainS != nil {
		defer mainS.stopWith()
		mainS.keptWarm = s.keptWarm
	}
	client := &http.Client{Timeout: 110 * time.Second}
	get := func(name string) (time.Duration, bool, error) {
		gw := s.gw
		if n, ok := strings.CutPrefix(name, "noiso-"); ok {
			name, gw = n, ns.gw
		}
		if n, ok := strings.CutPrefix(name, "main-"); ok {
			name, gw = n, mainS.gw
		}
		t0 := time.Now()
		resp, err := client.Get(fmt.Sprintf("%s/%s%s", gw, name, proj.path))
		if err != nil {
			return 0, false, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if err != nil {
			return 0, false, err
		}
		if resp.StatusCode != 200 || !proj.ok(string(b)) {
			return 0, false, fmt.Errorf("%s: %s %.200s", name, resp.Status, b)
		}
		return d, resp.Header.Get("X-Stoke-Cold") == "true", nil
	}
	quiet := func() error {
		if err := s.waitQuiet(ctx, 30*time.Second, 0); err != nil {
			return err
		}
		for _, o := range []*stokeProc{ns, mainS} {
			if o == nil {
				continue
			}
			if err := o.waitQuiet(ctx, 30*time.Second, 0); err != nil {
				return err
			}
		}
		time.Sleep(50 * time.Millisecond)
		return nil
	}
	if proj.name == "example" {
		// A note to list, so the view runs a query and the serializer (the
		// shop's data migration seeds its products).
		req, _ := http.NewRequestWithContext(ctx, "POST", s.gw+"/boost1024/api/notes/", strings.NewReader(`{"title":"seed","body":"33 s at 128 MB"}`))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := client.Do(req); err != nil {
			return err
		} else {
			resp.Body.Close()
		}
	}

	cold := map[string][]time.Duration{}
	warmNow := map[int][]time.Duration{}  // the same run's warm requests, by memory size
	warmMain := map[int][]time.Duration{} // main's (-main-bin)
	notCold := 0
	run := func(name string) error {
		if err := quiet(); err != nil {
			return err
		}
		d, c, err := get(name)
		if err != nil {
			return err
		}
		if !c {
			notCold++
			return nil
		}
		cold[name] = append(cold[name], d)
		return nil
	}
	// Interleaved: each round visits every size and mode once.
	for i := 0; i < *flagDjangoN; i++ {
		for _, m := range mems {
			for _, md := range modes {
				if md.prefix == "plain" && i >= *flagDjangoPlainN {
					continue
				}
				if err := run(fmt.Sprintf("%s%d", md.prefix, m)); err != nil {
					return err
				}
				if md.prefix != "plain" && ns != nil {
					if err := run(fmt.Sprintf("noiso-%s%d", md.prefix, m)); err != nil {
						return err
					}
				}
				if md.prefix != "plain" && mainS != nil {
					if err := run(fmt.Sprintf("main-%s%d", md.prefix, m)); err != nil {
						return err
					}
				}
			}
			for k := 0; k < 3; k++ {
				for _, w := range []struct {
					prefix string
					into   map[int][]time.Duration
				}{{"", warmNow}, {"main-", warmMain}} {
					if w.prefix != "" && mainS == nil {
						continue
					}
					d, c, err := get(fmt.Sprintf("%swarm%d", w.prefix, m))
					if err != nil {
						return err
					}
					if !c && (i > 0 || k > 0) { // its first request may pay lazy init
						w.into[m] = append(w.into[m], d)
					}
				}
			}
		}
		fmt.Fprintf(os.Stderr, "django: round %d of %d done\n", i+1, *flagDjangoN)
	}
	var tplInit string
	if b, err := os.ReadFile(filepath.Join(s.dir, "stoke.log")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if i := strings.Index(l, "TEMPLATE snap128"); i >= 0 {
				tplInit = l[i:]
			}
		}
	}
	s.stopWith()
	if ns != nil {
		ns.stopWith()
		ns = nil
	}
	if mainS != nil {
		mainS.stopWith()
	}

	// Warm latency and idle memory: one kept-warm instance per size, plain
	// and forked, after 20 requests each.
	cfg.Reset()
	cfg.WriteString("gateway:\n  timeout: 120s\nfunctions:\n")
	for _, m := range mems {
		fn(fmt.Sprintf("wplain%d", m), m, "false", "true", 1, "10m")
		fn(fmt.Sprintf("wsnap%d", m), m, "true", "true", 1, "10m")
	}
	w, err := e.startStokeWithin(ctx, "django-"+proj.name+"-warm", cfg.String(), djangoUp)
	if err != nil {
		return err
	}
	defer w.stopWith()
	s = w
	warm := map[string][]time.Duration{}
	mem := map[string][2]float64{} // USS, PSS in MB
	for _, m := range mems {
		for _, p := range []string{"wplain", "wsnap"} {
			name := fmt.Sprintf("%s%d", p, m)
			if err := w.waitInstances(ctx, name, 1, 100*time.Second); err != nil {
				return err
			}
		}
	}
	for r := 0; r < 20; r++ {
		for _, m := range mems {
			for _, p := range []string{"wplain", "wsnap"} {
				name := fmt.Sprintf("%s%d", p, m)
				d, _, err := get(name)
				if err != nil {
					return err
				}
				if r >= 2 { // the first two pay the plain instance's lazy init
					warm[name] = append(warm[name], d)
				}
			}
		}
	}
	time.Sleep(200 * time.Millisecond)
	for _, m := range mems {
		for _, p := range []string{"wplain", "wsnap"} {
			name := fmt.Sprintf("%s%d", p, m)
			pids := w.instancePids(name)
			if len(pids) != 1 {
				return fmt.Errorf("%s: instances %v", name, pids)
			}
			mem[name] = smaps(pids[0])
		}
	}
	// The spare forks (one per template, not instances): found by their
	// cgroup name, <function>-<version>-spare-<n>.
	var spares [][2]float64
	for _, pid := range children(w.pid) {
		for _, c := range children(pid) {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", c))
			if strings.Contains(string(b), "-spare-") {
				spares = append(spares, smaps(c))
			}
		}
	}

	fmt.Printf("Cold start of GET %s (request sent → response read, no instance running), %d rounds (plain: %d), interleaved.\n", proj.path, *flagDjangoN, *flagDjangoPlainN)
	fmt.Printf("| memory | plain start p50 (baseline) | fork snapshot p50 / p99 | snapshot + init boost p50 / p99 | boost vs plain | warm p50 plain / forked | idle USS (PSS) plain | idle USS (PSS) forked | seed: Lambda 2018 cold / warm |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|\n")
	verdict := []string{}
	for _, m := range mems {
		p, sn, bo := cold[fmt.Sprintf("plain%d", m)], cold[fmt.Sprintf("snap%d", m)], cold[fmt.Sprintf("boost%d", m)]
		wp, ws := warm[fmt.Sprintf("wplain%d", m)], warm[fmt.Sprintf("wsnap%d", m)]
		mp, mf := mem[fmt.Sprintf("wplain%d", m)], mem[fmt.Sprintf("wsnap%d", m)]
		fmt.Printf("| %d MB | %s | %s / %s | %s / %s | %.0f× faster | %s / %s | %.1f (%.1f) MB | %.1f (%.1f) MB | %s / %s |\n",
			m, ms(pct(p, .5)), ms(pct(sn, .5)), ms(pct(sn, .99)), ms(pct(bo, .5)), ms(pct(bo, .99)),
			float64(pct(p, .5))/float64(max(pct(bo, .5), 1)), ms(pct(wp, .5)), ms(pct(ws, .5)),
			mp[0], mp[1], mf[0], mf[1], seed[m], seedWarm[m])
		if pct(bo, .5) > 50*time.Millisecond {
			verdict = append(verdict, fmt.Sprintf("snapshot+boost p50 at %d MB is %s (> 50 ms)", m, ms(pct(bo, .5))))
		}
		if m == 128 && pct(sn, .5) > 250*time.Millisecond {
			verdict = append(verdict, fmt.Sprintf("snapshot p50 at 128 MB is %s (> 250 ms)", ms(pct(sn, .5))))
		}
		if mf[0] > 15 {
			verdict = append(verdict, fmt.Sprintf("idle forked USS at %d MB is %.1f MB (> 15 MB)", m, mf[0]))
		}
	}
	fmt.Printf("\nCold minus warm, same run: the cold starts above against a kept-warm forked instance of the same size asked between them (3 requests a round).\n")
	fmt.Printf("| memory | warm p50 (same run) | snapshot + boost cold p50 − warm | snapshot cold p50 − warm | target ≤ 20 ms |\n|---|---|---|---|---|\n")
	for _, m := range mems {
		wp := pct(warmNow[m], .5)
		bo, sn := pct(cold[fmt.Sprintf("boost%d", m)], .5), pct(cold[fmt.Sprintf("snap%d", m)], .5)
		res := "met"
		if bo-wp > 20*time.Millisecond {
			res = fmt.Sprintf("MISSED by %s", ms(bo-wp-20*time.Millisecond))
			verdict = append(verdict, fmt.Sprintf("boost cold − warm at %d MB is %s (> 20 ms)", m, ms(bo-wp)))
		}
		fmt.Printf("| %d MB | %s | %s | %s | %s |\n", m, ms(wp), ms(bo-wp), ms(sn-wp), res)
	}
	if mainS != nil {
		fmt.Printf("\nThis build against main's (-main-bin %s), same run, interleaved: snapshot + boost (the default) cold and warm p50 / p99, cold p50 − warm p50.\n", *flagMainBin)
		fmt.Printf("| memory | warm p50 this / main | boost cold p50 this / main | boost cold p99 this / main | cold − warm this / main | snapshot cold p50 this / main | cold p50 ratio this/main |\n|---|---|---|---|---|---|---|\n")
		for _, m := range mems {
			b, mb := cold[fmt.Sprintf("boost%d", m)], cold[fmt.Sprintf("main-boost%d", m)]
			wp, wm := pct(warmNow[m], .5), pct(warmMain[m], .5)
			fmt.Printf("| %d MB | %s / %s | %s / %s | %s / %s | %s / %s | %s / %s | %.2f |\n", m, ms(wp), ms(wm),
				ms(pct(b, .5)), ms(pct(mb, .5)), ms(pct(b, .99)), ms(pct(mb, .99)), ms(pct(b, .5)-wp), ms(pct(mb, .5)-wm),
				ms(pct(cold[fmt.Sprintf("snap%d", m)], .5)), ms(pct(cold[fmt.Sprintf("main-snap%d", m)], .5)),
				float64(pct(b, .5))/float64(max(pct(mb, .5), 1)))
		}
		fmt.Printf("samples per cell (main): snapshot %d, boost %d\n", len(cold["main-snap128"]), len(cold["main-boost128"]))
	}
	fmt.Printf("samples per cell: plain %d, snapshot %d, boost %d; answered warm instead of cold (excluded): %d\n",
		len(cold["plain128"]), len(cold["snap128"]), len(cold["boost128"]), notCold)
	for i, sp := range spares {
		if i == 0 {
			fmt.Printf("idle spare forks (%d, one per template):", len(spares))
		}
		fmt.Printf(" USS %.1f (PSS %.1f) MB", sp[0], sp[1])
		if i == len(spares)-1 {
			fmt.Println()
		}
	}
	if tplInit != "" {
		fmt.Printf("template start-up (once per version, not on any request's path): %s\n", tplInit)
	}
	if proj.noIsolation {
		fmt.Printf("\nWhat isolation costs a fork-snapshot cold start (same run, interleaved; the same functions on a Stoke with sandbox.isolation: false):\n")
		fmt.Printf("| memory | snapshot p50 isolated / not | ratio | snapshot + boost p50 isolated / not | ratio |\n|---|---|---|---|---|\n")
	}
	for _, m := range mems {
		if !proj.noIsolation {
			break
		}
		sn, nsn := pct(cold[fmt.Sprintf("snap%d", m)], .5), pct(cold[fmt.Sprintf("noiso-snap%d", m)], .5)
		bo, nbo := pct(cold[fmt.Sprintf("boost%d", m)], .5), pct(cold[fmt.Sprintf("noiso-boost%d", m)], .5)
		fmt.Printf("| %d MB | %s / %s | %.2f | %s / %s | %.2f |\n", m, ms(sn), ms(nsn), float64(sn)/float64(max(nsn, 1)),
			ms(bo), ms(nbo), float64(bo)/float64(max(nbo, 1)))
		if float64(bo) > 1.1*float64(nbo) {
			verdict = append(verdict, fmt.Sprintf("isolated snapshot+boost p50 at %d MB is %.0f%% above not isolated (> 10%%)", m, 100*(float64(bo)/float64(nbo)-1)))
		}
	}
	if len(verdict) == 0 {
		fmt.Println("targets (boost p50 ≤ 50 ms and cold − warm ≤ 20 ms at every size; snapshot p50 ≤ 250 ms at 128 MB; idle forked USS ≤ 15 MB): MET")
	} else {
		fmt.Println("targets MISSED: " + strings.Join(verdict, "; "))
	}
	return nil
}

// smaps returns a process's USS (private clean + dirty) and PSS in MB.
func smaps(pid int) [2]float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return [2]float64{-1, -1}
	}
	var uss, pss float64
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "Private_Clean:", "Private_Dirty:":
			uss += kb / 1024
		case "Pss:":
			pss = kb / 1024
		}
	}
	return [2]float64{uss, pss}
}
