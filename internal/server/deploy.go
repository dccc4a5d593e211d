package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/cluster"
	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/gateway"
	"github.com/stokehq/stoke/internal/keepalive"
	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/runtime"
	httprt "github.com/stokehq/stoke/internal/runtime/http"
	lambdart "github.com/stokehq/stoke/internal/runtime/lambda"
	wsgirt "github.com/stokehq/stoke/internal/runtime/wsgi"
	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/store"
)

// buildTimeout bounds one function's build command.
const buildTimeout = 10 * time.Minute

// Deploy applies a changed config to the running server (the admin API's
// POST /v1/deploy). A bad config or a failed build changes nothing.
func (s *Server) Deploy(ctx context.Context, path string, yaml []byte) (*admin.DeployResult, error) {
	if path == "" || len(bytes.TrimSpace(yaml)) == 0 {
		return nil, &admin.DeployError{Msg: "a deploy needs the config file's path and its text (stoke deploy -f stoke.yaml sends both)"}
	}
	cfg, err := config.Parse(path, yaml)
	if err != nil {
		return nil, &admin.DeployError{Msg: err.Error()}
	}
	if s.node != nil {
		return s.deployCluster(ctx, cfg, yaml, false)
	}
	return s.apply(ctx, cfg, yaml, applyOpts{})
}

// applyOpts are what a cluster deploy decides for apply (cluster.go); the
// zero value is a single node's deploy.
type applyOpts struct {
	// prebuilt: the functions' files were built on the deploying node
	// and unpacked here; nothing is built.
	prebuilt bool
	// versions and fps are the cluster's version and fingerprint of each
	// function (its own fingerprint is this node's relocated copy's).
	versions map[string]int
	fps      map[string]string
}

// fp is f's fingerprint as versions are counted.
func (o applyOpts) fp(f *config.Function) string {
	if fp, ok := o.fps[f.Name]; ok {
		return fp
	}
	return f.Fingerprint()
}

// apply builds what changed, starts new pools (waiting for their keep_warm
// instances), swaps the gateway's table and drains the replaced pools.
func (s *Server) apply(ctx context.Context, cfg *config.Config, yaml []byte, ao applyOpts) (*admin.DeployResult, error) {
	s.deployMu.Lock()
	defer s.deployMu.Unlock()
	return s.applyLocked(ctx, cfg, yaml, ao)
}

// applyLocked is apply with deployMu held.
func (s *Server) applyLocked(ctx context.Context, cfg *config.Config, yaml []byte, ao applyOpts) (*admin.DeployResult, error) {
	res := &admin.DeployResult{Deployed: map[string]string{}, Warnings: cfg.Warnings}
	if s.cfg != nil {
		if cfg.Listen != s.cfg.Listen || cfg.Admin.Listen != s.cfg.Admin.Listen || cfg.DataDir != s.cfg.DataDir {
			res.Warnings = append(res.Warnings, "listen, admin.listen and data_dir changes take effect on the next `stoke serve`")
		}
		if cfg.Billing != s.cfg.Billing {
			res.Warnings = append(res.Warnings, "billing changes take effect on the next `stoke serve`")
		}
		if cfg.MemoryBudgetMB != s.cfg.MemoryBudgetMB {
			res.Warnings = append(res.Warnings, "memory_budget changes take effect on the next `stoke serve`")
		}
	}

	s.mu.Lock()
	old := s.fns
	s.mu.Unlock()

	// Build everything that changed before touching anything: one failed
	// build leaves every function on its previous version.
	var changed []*config.Function
	names := make([]string, 0, len(cfg.Functions))
	for name := range cfg.Functions {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f := cfg.Functions[name]
		if d := old[name]; d != nil && d.fp == ao.fp(f) {
			res.Unchanged = append(res.Unchanged, name)
			continue
		}
		changed = append(changed, f)
	}
	s.setPaths(cfg, true)
	isos := map[string]*sandbox.Isolation{}
	for _, f := range changed {
		iso, err := s.isolation(ctx, cfg, f)
		if err != nil {
			return nil, &admin.DeployError{Msg: fmt.Sprintf("function %s: %v", f.Name, err)}
		}
		if err := makeWritable(f); err != nil {
			return nil, &admin.DeployError{Msg: err.Error()}
		}
		isos[f.Name] = iso
		if ao.prebuilt {
			continue
		}
		if err := s.build(ctx, f, iso); err != nil {
			return nil, err
		}
	}

	next := map[string]*deployed{}
	for _, name := range res.Unchanged {
		next[name] = old[name]
	}
	var started []*deployed
	fail := func(err error) (*admin.DeployResult, error) {
		for _, d := range started {
			d.close()
		}
		return nil, err
	}
	for _, f := range changed {
		v, ok := ao.versions[f.Name]
		if !ok {
			var err error
			if v, _, err = s.st.NextVersion(ctx, f.Name, f.Fingerprint()); err != nil {
				return fail(fmt.Errorf("choosing a version for %s: %w", f.Name, err))
			}
		}
		d := s.newDeployed(cfg, f, v, isos[f.Name], s.budget)
		d.fp = ao.fp(f)
		if o := old[f.Name]; o != nil {
			d.since = o.since // a new version: the function has been deployed (and kept warm) all along
		}
		if pr, ok := d.rt.(runtime.Preparer); ok {
			if err := pr.Prepare(ctx); err != nil {
				if old[f.Name] != nil {
					d.close()
					return fail(&admin.DeployError{Msg: fmt.Sprintf("function %s version %d did not start: %v\nThe previous version keeps serving.", f.Name, v, err)})
				}
				// Nothing to keep serving: deployed, failing (contain.go).
				d.pool.MarkFailing(err)
			}
		}
		if sn, ok := d.rt.(runtime.Snapshotter); ok {
			if snap, ok := sn.Snapshot(); ok {
				if snap.Interpreter != "" {
					if res.Runs == nil {
						res.Runs = map[string]string{}
					}
					res.Runs[f.Name] = "python " + snap.Interpreter
				}
				if snap.Warning != "" {
					res.Warnings = append(res.Warnings, f.Name+": "+snap.Warning)
				}
			}
		}
		d.pool.Start()
		s.offer(d)
		started = append(started, d)
		next[f.Name] = d
		res.Deployed[f.Name] = strconv.Itoa(v)
	}
	// New versions take traffic once their keep_warm instances are ready,
	// so a deploy does not turn warm traffic cold. One that cannot start
	// fails the deploy while a previous version serves; with none, it is
	// deployed failing and every other function serves (contain.go).
	for _, d := range started {
		if err := waitWarm(ctx, d); err != nil {
			if old[d.cfg.Name] != nil {
				return fail(&admin.DeployError{Msg: fmt.Sprintf("function %s version %d did not start its keep_warm instances: %v; the previous version keeps serving", d.cfg.Name, d.version, err)})
			}
			s.failingAtDeploy(res, d, err)
		}
	}
	for _, name := range res.Unchanged {
		// A deploy is a reason to try a failing function again at once.
		next[name].pool.ResetBackoff()
	}
	for _, d := range started {
		cj, _ := json.Marshal(d.cfg.Redacted())
		if err := s.st.PutVersion(ctx, store.Version{Function: d.cfg.Name, Version: d.version, Fingerprint: d.fp, Config: cj, Created: time.Now()}); err != nil {
			return fail(fmt.Errorf("saving version of %s: %w", d.cfg.Name, err))
		}
	}
	if yaml != nil {
		if err := s.st.PutConfig(ctx, cfg.Path, config.RedactText(yaml, cfg.Secrets())); err != nil {
			return fail(fmt.Errorf("saving the config: %w", err))
		}
	}

	for _, d := range started {
		d.gw.Cache = s.cacheFor(d.cfg) // only now: a failed deploy changes no cache
	}
	gfs := make([]*gateway.Function, 0, len(next))
	for _, d := range next {
		gfs = append(gfs, d.gw)
	}
	s.mu.Lock()
	s.fns = next
	s.cfg = cfg
	s.mu.Unlock()
	s.gw.Set(gfs)
	s.setPaths(cfg, false)
	for name, d := range next {
		s.metrics.SetKeepWarm(name, d.cfg.KeepWarm, d.cfg.Memory)
	}
	for name := range old {
		if next[name] == nil {
			s.metrics.SetKeepWarm(name, 0, 0)
		}
	}
	s.settleCaches(next)

	for name, d := range old {
		if next[name] == d {
			continue
		}
		if next[name] == nil {
			res.Removed = append(res.Removed, name)
		}
		s.drains.Add(1)
		go func() {
			defer s.drains.Done()
			dctx, cancel := context.WithTimeout(context.Background(), d.cfg.Timeout+5*time.Second)
			defer cancel()
			d.stopOffer()
			if err := d.pool.Drain(dctx); err != nil {
				s.log.Warn("old version did not drain in time; stopping it", "function", d.cfg.Name, "version", d.version, "err", err)
			}
			d.close()
		}()
	}
	for name, v := range res.Deployed {
		s.log.Info("deployed", "function", name, "version", v)
	}
	return res, nil
}

func (s *Server) newDeployed(cfg *config.Config, f *config.Function, version int, iso *sandbox.Isolation, budget *pool.Budget) *deployed {
	ver := strconv.Itoa(version)
	output := func(instance, stream, line string) { s.hub.Write(f.Name, instance, stream, line) }
	var rt runtime.Runtime
	switch f.Runtime {
	case "lambda":
		rt = lambdart.New(lambdart.Options{Function: f, Version: ver, Region: cfg.Region, AccountID: cfg.AccountID,
			Sandbox: s.sb, Isolation: iso, Output: output, Logger: s.log, Spares: s.spares})
	case "python-wsgi":
		rt = wsgirt.New(wsgirt.Options{Function: f, Version: ver, Region: cfg.Region, Sandbox: s.sb, Isolation: iso, Output: output, Logger: s.log})
	default:
		rt = httprt.New(httprt.Options{Function: f, Version: ver, Region: cfg.Region, Sandbox: s.sb, Isolation: iso, Output: output, Logger: s.log})
	}
	name := f.Name
	keepWarm, limiter, limit := f.KeepWarm, pool.Limiter(nil), (*cluster.Limit)(nil)
	if s.node != nil {
		keepWarm = cluster.KeepWarmShare(name, s.node.Name(), f.KeepWarm, s.node.Alive())
		limit = s.node.NewLimit(name, ver, f.MaxInstances)
		limiter = limit
	}
	p := pool.New(pool.Options{
		Runtime:      rt,
		MaxInstances: f.MaxInstances,
		KeepWarm:     keepWarm,
		Limiter:      limiter,
		Concurrency:  f.Concurrency,
		QueueSize:    cfg.Gateway.QueueSize,
		// A new version learns its traffic afresh; the node's mean size
		// scales what adaptive keeps (docs/keepalive.md).
		Policy:   f.KeepAlive.New(keepalive.Function{MemoryMB: f.Memory, NodeMemoryMB: meanMemoryMB(cfg)}),
		MemoryMB: f.Memory,
		Budget:   budget,
		Events:   func(e pool.Event) { s.instanceEvent(name, ver, e) },
		Logger:   s.log,
	})
	if limit != nil {
		limit.Start(p.Rescale)
	}
	now := time.Now()
	return &deployed{cfg: f, iso: iso, version: version, pool: p, limit: limit, rt: rt, deployedAt: now, since: now, gw: &gateway.Function{
		Name: f.Name, Version: ver, MemoryMB: f.Memory, Timeout: f.Timeout, Routes: f.Routes, Pool: p,
		Concurrency: f.Concurrency, InitBoost: f.InitBoost,
	}}
}

// meanMemoryMB is the mean memory size of cfg's functions: adaptive keeps a
// function twice that size half as long.
func meanMemoryMB(cfg *config.Config) int {
	sum := 0
	for _, f := range cfg.Functions {
		sum += f.Memory
	}
	return sum / max(len(cfg.Functions), 1)
}

// instanceEvent writes an instance's lifecycle to the function's log.
func (s *Server) instanceEvent(fn, version string, e pool.Event) {
	var line string
	switch e.Kind {
	case pool.EventReady:
		line = fmt.Sprintf("INSTANCE %s ready: version %s, pid %d, init %.2f ms", e.Instance, version, e.Pid, float64(e.Init.Microseconds())/1000)
	case pool.EventStartFailed:
		line = fmt.Sprintf("INSTANCE %s failed to start: %v", e.Instance, e.Err)
	case pool.EventExited:
		line = fmt.Sprintf("INSTANCE %s exited: %v", e.Instance, e.Err)
	case pool.EventStopped:
		line = fmt.Sprintf("INSTANCE %s stopped (%s)", e.Instance, e.Reason)
	}
	s.hub.Write(fn, e.Instance, "platform", line)
}

// build runs a function's build command in its cwd: isolated, as the
// function's user, when the sandbox isolates (the build runs the
// function's code: migrations, code generators), else as Stoke (Build).
func (s *Server) build(ctx context.Context, f *config.Function, iso *sandbox.Isolation) error {
	if strings.TrimSpace(f.Build) == "" {
		return nil
	}
	start := time.Now()
	var out string
	var err error
	if iso == nil {
		out, err = Build(ctx, f)
	} else {
		out, err = s.buildIsolated(ctx, f, iso)
		if err != nil {
			out += privateTmpNote(f.Cwd)
		}
	}
	if err != nil {
		return &admin.DeployError{Msg: fmt.Sprintf("%v\n%s\nNothing was deployed; the previous version keeps serving.", err, out)}
	}
	s.log.Info("built", "function", f.Name, "command", f.ShownBuild(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Build runs f's build command in its cwd as the calling user, with its
// environment (toolchains find their caches there), and returns its output
// with secrets redacted (RedactBuildOutput): a deploy without isolation,
// and `stoke check --build`. An empty build does nothing.
func Build(ctx context.Context, f *config.Function) (string, error) {
	if strings.TrimSpace(f.Build) == "" {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", f.Build)
	cmd.Dir = f.Cwd
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	shown := f.RedactBuildOutput(strings.TrimRight(out.String(), "\n"))
	if err != nil {
		return shown, fmt.Errorf("build of function %s failed (%v): %s", f.Name, err, f.ShownBuild())
	}
	return shown, nil
}

// buildIsolated runs the build in the sandbox: the function's user, its
// cwd writable and the rest of the host read-only, Stoke's files hidden,
// a private /tmp and a HOME kept across builds.
func (s *Server) buildIsolated(ctx context.Context, f *config.Function, iso *sandbox.Isolation) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	var out lockedBuffer
	err := s.runBuild(ctx, f, iso, &out)
	if err != nil {
		err = fmt.Errorf("build of function %s failed (%v): %s", f.Name, err, f.ShownBuild())
	}
	return f.RedactBuildOutput(strings.TrimRight(out.String(), "\n")), err
}

func (s *Server) runBuild(ctx context.Context, f *config.Function, iso *sandbox.Isolation, out *lockedBuffer) error {
	args := []string{"/bin/sh", "-c", f.Build}
	b := *iso
	b.Build = true
	if err := os.MkdirAll(b.Home, 0o700); err != nil {
		return fmt.Errorf("build home: %w", err)
	}
	// HOME is kept across builds (Go's, pip's caches), TMPDIR is not.
	env := []string{"HOME=/tmp/home", "TMPDIR=/tmp"}
	for _, k := range []string{"PATH", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range f.Env {
		env = append(env, k+"="+v)
	}
	id := fmt.Sprintf("%s-build-%d", f.Name, time.Now().UnixNano())
	p, err := s.sb.Start(ctx, sandbox.Spec{ID: id, Args: args, Dir: f.Cwd, Env: env, Isolation: &b,
		Output: func(_, line string) { out.WriteLine(line) }})
	if err != nil {
		return err
	}
	select {
	case <-p.Done():
	case <-ctx.Done():
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		_ = p.Stop(sctx, 0)
		c()
		return ctx.Err()
	}
	if x := p.Exit(); x.Code != 0 || x.Signal != "" {
		if x.Signal != "" {
			return fmt.Errorf("signal: %s", x.Signal)
		}
		return fmt.Errorf("exit status %d", x.Code)
	}
	return nil
}

// privateTmpNote explains a failed isolated build of code under /tmp: the
// build sees a private /tmp in which, of the host's, only cwd and the
// writable paths are shown, so what lies above cwd there (a checkout's
// go.mod, a shared package) is missing and the build's own error ("go.mod
// file not found in current directory or any parent directory") does not
// say why.
func privateTmpNote(cwd string) string {
	if !strings.HasPrefix(cwd, "/tmp/") {
		return ""
	}
	return "\nNote: isolated builds see a private /tmp, in which only " + cwd + " (cwd) and the writable paths are shown: " +
		"files above it in the host's /tmp (a go.mod, a shared package) are not there. Keep the project outside /tmp, " +
		"e.g. clone it under your home directory."
}

// lockedBuffer collects a build's output from two writers (or the
// sandbox's line callback).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) WriteLine(s string) {
	l.mu.Lock()
	l.b.WriteString(s)
	l.b.WriteByte('\n')
	l.mu.Unlock()
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitWarm(ctx context.Context, d *deployed) error {
	// This node's share of keep_warm in a cluster.
	keepWarm := d.pool.KeepWarm()
	if keepWarm == 0 {
		if h := d.pool.Health(); h.Failing {
			return errors.New(h.LastError) // its Prepare failed
		}
		return nil
	}
	limit := runtime.InitTimeout(d.cfg)*2 + 5*time.Second // a failed start is retried once
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		ready := 0
		for _, in := range d.pool.Instances() {
			if in.State == pool.StateIdle || in.State == pool.StateBusy {
				ready++
			}
		}
		if ready >= keepWarm {
			return nil
		}
		if h := d.pool.Health(); h.Failures >= 2 {
			// The cause (exit status, last output) now, rather than a
			// timeout later: the pool backs off before trying again.
			return fmt.Errorf("an instance failed to start: %s", h.LastError)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d keep_warm instances ready after %s (init_timeout %s); stoke logs %s shows their output", ready, keepWarm, limit, d.cfg.InitTimeout, d.cfg.Name)
		case <-t.C:
		}
	}
}

// localFunctions lists this node's deployed functions (`stoke ls` on one
// node; each node's part of the cluster's view, views.go).
func (s *Server) localFunctions() []admin.FunctionInfo {
	s.mu.Lock()
	fns := make([]*deployed, 0, len(s.fns))
	for _, d := range s.fns {
		fns = append(fns, d)
	}
	s.mu.Unlock()
	sort.Slice(fns, func(i, j int) bool { return fns[i].cfg.Name < fns[j].cfg.Name })
	out := make([]admin.FunctionInfo, 0, len(fns))
	for _, d := range fns {
		f := d.cfg
		out = append(out, admin.FunctionInfo{
			Name: f.Name, Runtime: f.Runtime, Version: strconv.Itoa(d.version), MemoryMB: f.Memory,
			Timeout: f.Timeout.String(), Concurrency: f.Concurrency, MaxInstances: f.MaxInstances,
			KeepWarm: f.KeepWarm, Routes: f.Routes,
			Waiting: d.pool.Waiting(), Instances: d.pool.Instances(), KeepAlive: d.pool.KeepAlive(), Health: d.pool.Health(),
		})
		if c := d.gw.Cache; c != nil {
			st := c.Stats()
			out[len(out)-1].Cache = &st
		}
		if s.node != nil {
			out[len(out)-1].Node = s.node.Name()
			out[len(out)-1].Offered = s.node.Offered(f.Name, strconv.Itoa(d.version))
		}
		if sn, ok := d.rt.(runtime.Snapshotter); ok {
			if snap, ok := sn.Snapshot(); ok {
				out[len(out)-1].Snapshot = &snap
			}
		}
	}
	return out
}

// Invoke runs one request on a function through the gateway.
func (s *Server) Invoke(w http.ResponseWriter, r *http.Request, function string) {
	s.gw.Invoke(w, r, function)
}

func (s *Server) localRecords(ctx context.Context, q store.Query) ([]record.Record, error) {
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	return s.st.Records(ctx, q)
}

func (s *Server) localLogs(ctx context.Context, function string, afterSeq int64, limit int) ([]store.LogLine, error) {
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	return s.st.Logs(ctx, function, afterSeq, limit)
}

func (s *Server) localTailLogs(ctx context.Context, function string, n int) ([]store.LogLine, error) {
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	return s.st.TailLogs(ctx, function, n)
}
