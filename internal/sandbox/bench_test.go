package sandbox_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"

	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// The start benchmarks time until the child runs its program: from the call
// (exec.Cmd.Start, Manager.Start) until its first output line ("hello",
// printed first thing in main) has arrived. The exit, the cgroup removal and
// refilling the stub pool are not timed.

// BenchmarkPlainExec is the baseline: a bare exec.Cmd.Start of the same
// child in its own process group, reading its stdout pipe.
func BenchmarkPlainExec(b *testing.B) {
	exe := self(b)
	for b.Loop() {
		cmd := exec.Command(exe)
		cmd.Env = []string{childEnv + "=hello"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = cmd.Wait()
		b.StartTimer()
	}
}

// BenchmarkStart is Manager.Start without stubs: cgroup creation and
// limits, pipes, fork and exec, joining the cgroup (v1: under ptrace).
func BenchmarkStart(b *testing.B) {
	benchStart(b, -1)
}

// BenchmarkStartStub is Manager.Start handing the spec to an idle stub,
// which is already in its cgroup; the pool is full before each start.
func BenchmarkStartStub(b *testing.B) {
	benchStart(b, 1)
}

func benchStart(b *testing.B, stubs int) {
	for _, tc := range []struct {
		name string
		opts sandbox.Options
	}{{"cgroup", sandbox.Options{Stubs: stubs}}, {"nocgroup", sandbox.Options{DisableCgroups: true, Stubs: stubs}}} {
		b.Run(tc.name, func(b *testing.B) {
			m := newManager(b, tc.opts, &syncBuffer{})
			exe, i := self(b), 0
			line := make(chan struct{}, 1)
			for b.Loop() {
				b.StopTimer()
				if stubs > 0 {
					waitStubs(b, m, stubs)
				}
				i++
				b.StartTimer()
				p, err := m.Start(context.Background(), sandbox.Spec{
					ID: fmt.Sprint("b", i), Args: []string{exe}, MemoryMB: 128,
					Env: []string{childEnv + "=hello"}, Output: func(string, string) {
						select {
						case line <- struct{}{}:
						default:
						}
					},
				})
				if err != nil {
					b.Fatal(err)
				}
				<-line
				b.StopTimer()
				if stubs > 0 && !sandbox.FromStub(p) {
					b.Fatal("not started from a stub")
				}
				<-p.Done()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkMemoryRead compares the single-file read behind MaxMemoryMB with
// the library's Stat of the same cgroup.
func BenchmarkMemoryRead(b *testing.B) {
	m := newManager(b, sandbox.Options{}, nil)
	if !m.Enforced() {
		sandboxtest.SkipWithoutCgroups(b, "cgroups not usable here")
	}
	p := start(b, m, "mem", 128, nil, childEnv+"=sleep")
	b.Cleanup(func() { _ = p.Stop(context.Background(), 0) })
	b.Run("MaxMemoryMB", func(b *testing.B) {
		for b.Loop() {
			if p.MaxMemoryMB() <= 0 {
				b.Fatal("no memory use")
			}
		}
	})
	b.Run("cgroup1.Stat", func(b *testing.B) {
		dir := sandbox.CgroupDirs(m, "mem")[0]
		if !strings.HasPrefix(dir, "/sys/fs/cgroup/memory/") {
			b.Skip("not cgroup v1")
		}
		cg, err := cgroup1.Load(cgroup1.StaticPath(filepath.Join("/", strings.TrimPrefix(dir, "/sys/fs/cgroup/memory/"))))
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			st, err := cg.Stat(cgroup1.IgnoreNotExist)
			if err != nil || st.Memory.Usage.Max == 0 {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStartInterleaved runs the three ways to start in turn within each
// iteration (plain exec, Start without stubs, Start from a stub; cgroups on)
// and reports each one's median in ms: this VM's speed drifts within
// minutes, so only numbers from the same run compare.
func BenchmarkStartInterleaved(b *testing.B) {
	exe := self(b)
	noStub := newManager(b, sandbox.Options{Stubs: -1}, &syncBuffer{})
	stubs := newManager(b, sandbox.Options{Stubs: 1}, &syncBuffer{})
	if !stubs.Enforced() {
		sandboxtest.SkipWithoutCgroups(b, "cgroups not usable here")
	}
	line := make(chan struct{}, 1)
	out := func(string, string) {
		select {
		case line <- struct{}{}:
		default:
		}
	}
	managed := func(m *sandbox.Manager, id string, mem int) time.Duration {
		t0 := time.Now()
		p, err := m.Start(context.Background(), sandbox.Spec{
			ID: id, Args: []string{exe}, MemoryMB: mem, Env: []string{childEnv + "=hello"}, Output: out,
		})
		if err != nil {
			b.Fatal(err)
		}
		<-line
		d := time.Since(t0)
		<-p.Done()
		return d
	}
	var plain, start, stub []time.Duration
	i := 0
	for b.Loop() { // the medians are the result, not ns/op
		i++
		t0 := time.Now()
		cmd := exec.Command(exe)
		cmd.Env = []string{childEnv + "=hello"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		r, err := cmd.StdoutPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bufio.NewReader(r).ReadString('\n'); err != nil {
			b.Fatal(err)
		}
		plain = append(plain, time.Since(t0))
		_ = cmd.Wait()

		start = append(start, managed(noStub, fmt.Sprint("s", i), 3538))
		waitStubs(b, stubs, 1)
		time.Sleep(20 * time.Millisecond) // let the refill's join finish, as between cold starts
		stub = append(stub, managed(stubs, fmt.Sprint("t", i), 3538))
	}
	med := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2]) / float64(time.Millisecond)
	}
	b.ReportMetric(med(plain), "plain-ms")
	b.ReportMetric(med(start), "start-ms")
	b.ReportMetric(med(stub), "stub-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkIsolatedStart is what isolation adds to a stub start, step by
// step, interleaved: a bare exec.Cmd.Start of the same program (no
// sandbox); a stub start without isolation; isolated (the view,
// the function's user, seccomp; code through an idmapped mount); isolated
// with code the function's user owns (no idmap); and isolated with
// network: none (a network namespace made per start). Medians reported.
func BenchmarkIsolatedStart(b *testing.B) {
	if os.Geteuid() != 0 {
		sandboxtest.SkipWithoutCgroups(b, "isolation needs root")
	}
	// Each Manager under a cgroup root of its own, a sibling of stoke/:
	// on a shared host the stoke/ tree holds every other Stoke's
	// instances, whose load the isolated starts would share and the plain
	// ones not. Not through newManager: its leak check would run while the
	// other is open.
	// Idle stubs only: BenchmarkPreparedStart measures prepared ones.
	iso := ownRootManager(b, "stokebench-iso", sandbox.Options{Isolate: true, Prepared: -1})
	plain := ownRootManager(b, "stokebench-plain", sandbox.Options{Stubs: 2, Prepared: -1})
	code, exe := codeDir(b)
	owned, ownedExe := codeDir(b)
	const uid = 200950
	if err := os.Chown(owned, uid, uid); err != nil {
		b.Fatal(err)
	}
	if err := os.Chown(ownedExe, uid, uid); err != nil {
		b.Fatal(err)
	}
	line := make(chan struct{}, 1)
	out := func(string, string) {
		select {
		case line <- struct{}{}:
		default:
		}
	}
	i := 0
	// Before every start both pools are full: a refill (a new stub joining
	// its cgroup, which on v1 holds up every fork, exec and exit on the
	// host for an RCU grace period) must not land on another variant's start.
	full := func() {
		waitStubs(b, plain, 2)
		waitStubs(b, iso, 2)
		time.Sleep(20 * time.Millisecond) // let a refill's join finish, as between cold starts
	}
	run := func(m *sandbox.Manager, exe string, is *sandbox.Isolation) time.Duration {
		full()
		i++
		id := fmt.Sprint("i", i, "-", variantName(is, exe == ownedExe))
		t0 := time.Now()
		p, err := m.Start(context.Background(), sandbox.Spec{ID: id, Args: []string{exe}, Dir: filepath.Dir(exe),
			MemoryMB: 3538, Env: []string{childEnv + "=hello"}, Output: out, Isolation: is})
		if err != nil {
			b.Fatal(err)
		}
		<-line
		d := time.Since(t0)
		<-p.Done()
		return d
	}
	bare := func() time.Duration {
		full()
		t0 := time.Now()
		cmd := exec.Command(exe)
		cmd.Env = []string{childEnv + "=hello"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		r, err := cmd.StdoutPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bufio.NewReader(r).ReadString('\n'); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		_ = cmd.Wait()
		return d
	}
	ds := make([][]time.Duration, 5)
	variants := []func() time.Duration{
		func() time.Duration { return run(plain, exe, nil) },
		func() time.Duration { return run(iso, exe, &sandbox.Isolation{UID: uid, GID: uid, Code: code}) },
		func() time.Duration {
			return run(iso, ownedExe, &sandbox.Isolation{UID: uid, GID: uid, Code: owned})
		},
		func() time.Duration {
			return run(iso, exe, &sandbox.Isolation{UID: uid, GID: uid, Code: code, NoNetwork: true})
		},
		bare,
	}
	for b.Loop() { // the medians are the result, not ns/op
		// A new order every round: a start pays for what the one before
		// it left behind (its cgroup's removal, the kernel's deferred
		// work), so no variant may always follow the same one.
		for _, v := range rand.Perm(len(variants)) {
			ds[v] = append(ds[v], variants[v]())
		}
	}
	med := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2]) / float64(time.Millisecond)
	}
	b.ReportMetric(med(ds[4]), "bare-exec-ms")
	b.ReportMetric(med(ds[0]), "stub-ms")
	b.ReportMetric(med(ds[1]), "isolated-ms")
	b.ReportMetric(med(ds[2]), "isolated-noidmap-ms")
	b.ReportMetric(med(ds[3]), "isolated-nonet-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkPreparedStart: a start on a stub prepared for its config
// (prepare.go) against one on an idle stub, isolated and not, against a
// bare exec, each variant once per round in a new random order; the
// result is the median time from Start to the child's first line (and to
// Start's return: the exec done), in ms. Run as root:
//
//	go test -c -o /tmp/sandbox.test ./internal/sandbox && cd internal/sandbox &&
//	/tmp/sandbox.test -test.run '^$' -test.bench PreparedStart -test.benchtime 150x
func BenchmarkPreparedStart(b *testing.B) {
	if os.Geteuid() != 0 {
		sandboxtest.SkipWithoutCgroups(b, "isolation needs root")
	}
	ms := []*sandbox.Manager{
		ownRootManager(b, "stokebench-idle-iso", sandbox.Options{Isolate: true, Prepared: -1}),
		ownRootManager(b, "stokebench-prep-iso", sandbox.Options{Isolate: true}),
		ownRootManager(b, "stokebench-idle", sandbox.Options{Stubs: 2, Prepared: -1}),
		ownRootManager(b, "stokebench-prep", sandbox.Options{Stubs: 2}),
	}
	names := []string{"idle-iso", "prepared-iso", "idle", "prepared"}
	code, exe := codeDir(b)
	const uid = 200950
	line := make(chan struct{}, 1)
	out := func(string, string) {
		select {
		case line <- struct{}{}:
		default:
		}
	}
	full := func(round int) {
		for k, m := range ms {
			waitStubs(b, m, 2)
			if k%2 == 1 && round > 0 {
				waitPrepared(b, m, 1)
			}
		}
		time.Sleep(20 * time.Millisecond) // let a refill's join finish, as between cold starts
	}
	i := 0
	run := func(k, round int) (time.Duration, time.Duration) {
		full(round)
		i++
		var is *sandbox.Isolation
		if k < 2 {
			is = &sandbox.Isolation{UID: uid, GID: uid, Code: code}
		}
		t0 := time.Now()
		p, err := ms[k].Start(context.Background(), sandbox.Spec{ID: fmt.Sprint("p", i), Args: []string{exe}, Dir: code,
			MemoryMB: 3538, Env: []string{childEnv + "=hello"}, Output: out, Isolation: is})
		if err != nil {
			b.Fatal(err)
		}
		started := time.Since(t0)
		<-line
		d := time.Since(t0)
		<-p.Done()
		if prepared := sandbox.FromPrepared(p); round > 0 && prepared != (k%2 == 1) {
			b.Fatalf("%s: started in a prepared stub: %v", names[k], prepared)
		}
		return started, d
	}
	starts := make([][]time.Duration, len(ms))
	lines := make([][]time.Duration, len(ms)+1)
	round := 0
	for b.Loop() { // the medians are the result, not ns/op
		for _, k := range rand.Perm(len(ms) + 1) {
			if k == len(ms) {
				full(round)
				t0 := time.Now()
				cmd := exec.Command(exe)
				cmd.Env = []string{childEnv + "=hello"}
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				r, err := cmd.StdoutPipe()
				if err == nil {
					err = cmd.Start()
				}
				if err != nil {
					b.Fatal(err)
				}
				if _, err := bufio.NewReader(r).ReadString('\n'); err != nil {
					b.Fatal(err)
				}
				lines[k] = append(lines[k], time.Since(t0))
				_ = cmd.Wait()
				continue
			}
			st, d := run(k, round)
			if round > 0 { // the first start of a config finds nothing prepared
				starts[k], lines[k] = append(starts[k], st), append(lines[k], d)
			}
		}
		round++
	}
	med := func(ds []time.Duration) float64 {
		if len(ds) == 0 {
			return 0
		}
		slices.Sort(ds)
		return float64(ds[len(ds)/2]) / float64(time.Millisecond)
	}
	b.ReportMetric(med(lines[len(ms)]), "bare-exec-ms")
	for k, n := range names {
		b.ReportMetric(med(lines[k]), n+"-ms")
		b.ReportMetric(med(starts[k]), n+"-start-ms")
	}
	b.ReportMetric(0, "ns/op")
}

// ownRootManager is a Manager whose cgroups live under root (see
// BenchmarkIsolatedStart), removed again at the end.
func ownRootManager(b *testing.B, root string, opts sandbox.Options) *sandbox.Manager {
	opts.Root = root
	m, err := sandbox.NewWithOptions(slog.New(slog.DiscardHandler), opts)
	if err != nil {
		b.Fatal(err)
	}
	if !m.Enforced() {
		sandboxtest.SkipWithoutCgroups(b, "cgroups not usable here")
	}
	b.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			b.Error(err)
		}
		for _, h := range []string{"memory", "cpu", "pids"} {
			_ = os.Remove("/sys/fs/cgroup/" + h + "/" + root + "/stoke")
			_ = os.Remove("/sys/fs/cgroup/" + h + "/" + root)
		}
	})
	return m
}

// BenchmarkNewNetNS is what `network: none` adds to a start: a network
// namespace (CLONE_NEWNET) with lo up, made and let go.
func BenchmarkNewNetNS(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	for b.Loop() {
		ns, err := sandbox.NewNetNS()
		if err != nil {
			b.Fatal(err)
		}
		ns.Close()
	}
}

// variantName names a BenchmarkIsolatedStart variant in its instance ids.
func variantName(is *sandbox.Isolation, owned bool) string {
	switch {
	case is == nil:
		return "stub"
	case is.NoNetwork:
		return "nonet"
	case owned:
		return "noidmap"
	}
	return "isolated"
}
