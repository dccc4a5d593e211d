package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// env is one benchmark run: the binaries, built once into a temp dir, and
// every process started, so that cleanup can stop them all.
type env struct {
	root  string // the repository
	dir   string // temp dir, removed at the end
	stoke string // bin/stoke of the repository
	hello string // examples/hello, built into dir
	proxy string // bench/cmd/plainproxy, built into dir
	floor string // bench/cmd/floorproxy, built into dir

	mu    sync.Mutex
	procs []*exec.Cmd
	leaks []string
}

func repoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/stokehq/stoke") {
			return d, nil
		}
		p := filepath.Dir(d)
		if p == d {
			return "", errors.New("run stokebench inside the stoke repository")
		}
		d = p
	}
}

func newEnv(ctx context.Context) (*env, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "stokebench-")
	if err != nil {
		return nil, err
	}
	e := &env{root: root, dir: dir, stoke: filepath.Join(root, "bin", "stoke"),
		hello: filepath.Join(dir, "hello"), proxy: filepath.Join(dir, "plainproxy"), floor: filepath.Join(dir, "floorproxy")}
	for _, b := range [][2]string{{e.stoke, "./cmd/stoke"}, {e.hello, "./examples/hello"}, {e.proxy, "./bench/cmd/plainproxy"}, {e.floor, "./bench/cmd/floorproxy"}} {
		c := exec.CommandContext(ctx, goBin(), "build", "-o", b[0], b[1])
		c.Dir = root
		if out, err := c.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("go build %s: %v\n%s", b[1], err, out)
		}
	}
	return e, nil
}

func goBin() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// close stops every process still running (SIGTERM, then SIGKILL after 10s),
// checks nothing of ours is left, and removes the temp dir.
func (e *env) close() {
	e.mu.Lock()
	procs := e.procs
	e.procs = nil
	e.mu.Unlock()
	for _, c := range procs {
		stopProc(c, 10*time.Second)
	}
	for _, pid := range procsUsing(e.dir) {
		e.leak(fmt.Sprintf("process %d (%s) still running at exit; killed", pid, cmdline(pid)))
		syscall.Kill(pid, syscall.SIGKILL)
	}
	os.RemoveAll(e.dir)
	for _, l := range e.leaks {
		fmt.Fprintln(os.Stderr, "LEAK:", l)
	}
}

func (e *env) tracked(pid int) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.procs {
		if c.Process != nil && c.Process.Pid == pid {
			return true
		}
	}
	return false
}

func (e *env) leak(s string) {
	e.mu.Lock()
	e.leaks = append(e.leaks, s)
	e.mu.Unlock()
}

// start starts a process tracked for cleanup; its output goes to logPath.
func (e *env) start(logPath string, env []string, name string, args ...string) (*exec.Cmd, error) {
	c := exec.Command(name, args...)
	c.Env = append(os.Environ(), env...)
	if logPath != "" {
		f, err := os.Create(logPath)
		if err != nil {
			return nil, err
		}
		c.Stdout, c.Stderr = f, f
		defer f.Close()
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.procs = append(e.procs, c)
	e.mu.Unlock()
	return c, nil
}

// stop stops one tracked process.
func (e *env) stop(c *exec.Cmd, grace time.Duration) {
	e.mu.Lock()
	for i, p := range e.procs {
		if p == c {
			e.procs = append(e.procs[:i], e.procs[i+1:]...)
			break
		}
	}
	e.mu.Unlock()
	stopProc(c, grace)
}

func stopProc(c *exec.Cmd, grace time.Duration) {
	if c.Process == nil || c.ProcessState != nil {
		return
	}
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	if grace > 0 {
		c.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			return
		case <-time.After(grace):
			fmt.Fprintf(os.Stderr, "stokebench: %s (pid %d) did not stop in %v; killing\n", c.Path, c.Process.Pid, grace)
		}
	}
	c.Process.Kill()
	<-done
}

// freePort returns a loopback port nobody listens on right now.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// procsUsing lists processes whose command line mentions s (e.g. the temp
// dir holding the hello binary), excluding this one.
func procsUsing(s string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if strings.Contains(cmdline(pid), s) {
			out = append(out, pid)
		}
	}
	return out
}

// ppid is pid's parent (0 when it is gone).
func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// cpuTime is utime+stime of a process (all its threads).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// fields after "(comm) ": state=0 ... utime=11 stime=12
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// status reads a kB field (VmRSS, VmHWM) of /proc/<pid>/status, in MB.
func status(pid int, key string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return kb / 1024
		}
	}
	return 0
}

// stokeProc is one running `stoke serve` with a generated config.
type stokeProc struct {
	e     *env
	bin   string // the stoke binary it runs (its stubs' command line)
	cmd   *exec.Cmd
	gw    string // http://127.0.0.1:port
	admin string
	token string
	dir   string
	pid   int
	hc    *http.Client
	// keptWarm: functions whose instances waitQuiet does not wait out
	// (kept warm on purpose, as a same-run baseline).
	keptWarm map[string]bool
	// mostStubs is the most stubs idleStubs has counted: idle ones and,
	// once a config has started, one prepared for it (a build of Stoke
	// with prepared stubs keeps more than its idle pool).
	mostStubs int
}

// startStoke writes stoke.yaml (the gateway and admin listen addresses and
// data_dir are added here) and runs `stoke serve -q` until both APIs answer.
// apps (binaries built into the temp dir) are copied into the config's
// directory, which is every function's default cwd: an isolated function
// sees only its own directory (docs/SECURITY.md), so a config names an app
// as ./<its base name>.
func (e *env) startStoke(ctx context.Context, name, body string, apps ...string) (*stokeProc, error) {
	return e.startStokeWithin(ctx, name, body, 60*time.Second, apps...)
}

// startStokeWithin is startStoke for a Stoke that may take up to wait to
// answer (it serves once its keep_warm instances are ready).
func (e *env) startStokeWithin(ctx context.Context, name, body string, wait time.Duration, apps ...string) (*stokeProc, error) {
	return e.startStokeAt(ctx, name, "127.0.0.1", body, wait, apps...)
}

// startStokeAt is startStokeWithin with both listeners on host (a
// cluster's nodes on 127.0.0.2, .3, …).
func (e *env) startStokeAt(ctx context.Context, name, host, body string, wait time.Duration, apps ...string) (*stokeProc, error) {
	dir := filepath.Join(e.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, a := range apps {
		if err := copyFile(a, filepath.Join(dir, filepath.Base(a))); err != nil {
			return nil, fmt.Errorf("copying %s into the functions' directory: %w", a, err)
		}
	}
	gp, ap := freePort(), freePort()
	yaml := fmt.Sprintf("listen: %s:%d\nadmin:\n  listen: %s:%d\ndata_dir: %s\n%s",
		host, gp, host, ap, filepath.Join(dir, "data"), body)
	cfg := filepath.Join(dir, "stoke.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	c, err := e.start(filepath.Join(dir, "stoke.log"), nil, e.stoke, "serve", "-q", "-f", cfg)
	if err != nil {
		return nil, err
	}
	s := &stokeProc{e: e, bin: e.stoke, cmd: c, dir: dir, pid: c.Process.Pid,
		gw: fmt.Sprintf("http://%s:%d", host, gp), admin: fmt.Sprintf("http://%s:%d", host, ap),
		hc: &http.Client{Timeout: 10 * time.Second}}
	deadline := time.Now().Add(wait)
	for {
		if ctx.Err() != nil || time.Now().After(deadline) || exited(c) {
			log, _ := os.ReadFile(filepath.Join(dir, "stoke.log"))
			s.stop()
			return nil, fmt.Errorf("stoke did not come up (%v):\n%s", ctx.Err(), tail(string(log), 2000))
		}
		if s.token == "" {
			if b, err := os.ReadFile(filepath.Join(dir, "data", "admin-token")); err == nil {
				s.token = strings.TrimSpace(string(b))
			}
		}
		if s.token != "" {
			if _, err := s.functions(); err == nil {
				if conn, err := net.Dial("tcp", s.gw[len("http://"):]); err == nil {
					conn.Close()
					return s, nil
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func exited(c *exec.Cmd) bool {
	var ws syscall.WaitStatus
	pid, _ := syscall.Wait4(c.Process.Pid, &ws, syscall.WNOHANG, nil)
	if pid == c.Process.Pid {
		c.Process.Release()
		c.ProcessState = &os.ProcessState{}
		return true
	}
	return false
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// stop shuts stoke down with SIGTERM and checks it left no process and no
// cgroup behind.
func (s *stokeProc) stop() {
	s.e.stop(s.cmd, 20*time.Second)
	time.Sleep(50 * time.Millisecond)
	// Every app this Stoke ran was copied into its directory.
	for _, pid := range appProcs(s.dir, "") {
		s.e.leak(fmt.Sprintf("after stoke (pid %d) stopped, process %d (%s) was still running; killed", s.pid, pid, cmdline(pid)))
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, h := range []string{"memory", "cpu", "pids"} {
		p := fmt.Sprintf("/sys/fs/cgroup/%s/stoke/%d", h, s.pid)
		if _, err := os.Stat(p); err == nil {
			s.e.leak("cgroup left behind: " + p)
		}
	}
}

type instanceInfo struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Pid   int    `json:"pid"`
}

type functionInfo struct {
	Name      string         `json:"name"`
	Waiting   int            `json:"waiting"`
	Instances []instanceInfo `json:"instances"`
}

func (s *stokeProc) get(path string, v any) error {
	req, _ := http.NewRequest("GET", s.admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return json.Unmarshal(b, v)
}

func (s *stokeProc) functions() (map[string]functionInfo, error) {
	var raw json.RawMessage
	if err := s.get("/v1/functions", &raw); err != nil {
		return nil, err
	}
	// Accept either a list or {"functions": [...]}.
	var list []functionInfo
	if err := json.Unmarshal(raw, &list); err != nil {
		var wrapped struct {
			Functions []functionInfo `json:"functions"`
		}
		if err := json.Unmarshal(raw, &wrapped); err != nil {
			return nil, fmt.Errorf("decoding /v1/functions: %w", err)
		}
		list = wrapped.Functions
	}
	m := make(map[string]functionInfo, len(list))
	for _, f := range list {
		m[f.Name] = f
	}
	return m, nil
}

// waitIdle waits until no instance of any function is listed and no process
// of the hello binary is alive (a reaped instance leaves the list before its
// process has exited), so the next request is a cold start on a quiet machine.
func (s *stokeProc) waitIdle(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		fs, err := s.functions()
		if err != nil {
			return err
		}
		n := 0
		for _, f := range fs {
			n += len(f.Instances)
		}
		if n == 0 && len(appProcs(s.e.dir, "hello")) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still %d instances / %d hello processes after %v", n, len(appProcs(s.e.dir, "hello")), timeout)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// stats

func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/1e3) }

func medianF(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// copyFile copies an executable.
func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

// appProcs lists the running processes of the app called base (any, for
// "") that this run placed under dir (a baseline's or a Stoke's copy), by
// their argv[0]:
// a process's command line names its program by the absolute path Stoke
// resolved, also when it runs isolated.
func appProcs(dir, base string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		argv0, _, _ := strings.Cut(string(b), "\x00")
		if strings.HasPrefix(argv0, dir+"/") && (base == "" || filepath.Base(argv0) == base) {
			out = append(out, pid)
		}
	}
	return out
}

// startMainStoke is startStoke with the binary of -main-bin (nil, nil
// without it): main's Stoke, measured in the same run as this build's.
func (e *env) startMainStoke(ctx context.Context, name, body string, apps ...string) (*stokeProc, error) {
	if *flagMainBin == "" {
		return nil, nil
	}
	cur := e.stoke
	e.stoke = *flagMainBin
	defer func() { e.stoke = cur }()
	return e.startStoke(ctx, name, body, apps...)
}

// paired collects one duration per variant per round, for per-round
// differences: on this VM the load swings within a run, and two starts
// made one after the other in the same round see nearly the same load.
type paired map[int]map[int]time.Duration // round → variant → duration

func (p paired) add(round, variant int, d time.Duration) {
	if p[round] == nil {
		p[round] = map[int]time.Duration{}
	}
	p[round][variant] = d
}

// diff returns the median and the 10th and 90th percentiles of a − b over
// the rounds that have both, and how many rounds that is.
func (p paired) diff(a, b int) (p50, p10, p90 time.Duration, n int) {
	var ds []time.Duration
	for _, r := range p {
		da, oka := r[a]
		db, okb := r[b]
		if oka && okb {
			ds = append(ds, da-db)
		}
	}
	if len(ds) == 0 {
		return 0, 0, 0, 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return at(.5), at(.1), at(.9), len(ds)
}

// printDiff says what a costs over b, round by round.
func (p paired) printDiff(what string, a, b int) {
	p50, p10, p90, n := p.diff(a, b)
	fmt.Printf("%s, per round (%d rounds): median %+.2f ms (10th–90th percentile %+.2f to %+.2f ms)\n",
		what, n, float64(p50)/1e6, float64(p10)/1e6, float64(p90)/1e6)
}

// printComparisons says what variant 0 (Stoke, 3538 MB, isolated) costs
// against the not-isolated variant iso, the bare start bare, main's build
// kMain and the bare start beside Stoke's instances kBeside (kMain and
// kBeside are -1 when not measured), at p50 and p99 and round by round:
// the same lines for cold and lambda-cold.
func printComparisons(res [][]time.Duration, rounds paired, iso, bare, kMain, kBeside int) {
	diff := func(what string, k int) {
		fmt.Printf("%s: %+.2f ms at p50, %+.2f ms at p99\n", what,
			float64(pct(res[0], .5)-pct(res[k], .5))/1e6, float64(pct(res[0], .99)-pct(res[k], .99))/1e6)
	}
	diff("isolation costs (3538 MB, isolated − not isolated)", iso)
	rounds.printDiff("isolation (3538 MB, isolated − not isolated)", 0, iso)
	rounds.printDiff("over the bare start (3538 MB isolated − direct)", 0, bare)
	if kMain >= 0 {
		diff("this build − main's (3538 MB, isolated)", kMain)
		rounds.printDiff("this build − main's (3538 MB, isolated)", 0, kMain)
	}
	if kBeside >= 0 {
		diff("over the bare start beside Stoke's instances, same CPU share (3538 MB isolated)", kBeside)
		rounds.printDiff("over the bare start beside Stoke's instances (3538 MB isolated − direct beside)", 0, kBeside)
	}
}
