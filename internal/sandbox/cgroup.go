package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const (
	cgroupMount = "/sys/fs/cgroup"
	cpuPeriodUS = 100000
	minQuotaUS  = 1000 // the kernel rejects cfs quotas below 1 ms
	mib         = 1 << 20
)

// hierarchy is where this Manager's cgroups live: the parent stoke/<pid> in
// either the v1 memory, cpu and pids hierarchies or the v2 unified one,
// shared with the other Managers of this process (parents).
//
// The parent sits at <Root>/stoke/<pid> of each hierarchy, Root "/" by
// default, rather than nested under the cgroup Stoke itself runs in. Nesting
// (cgroup1.NestedPath) puts the instances under whatever session or job
// cgroup happened to start Stoke, which differs between runs (on this dev VM
// every shell gets its own memory cgroup), so a restarted Stoke could not
// find and sweep what a crashed one left, and the leftover children would
// stop the owner of that cgroup from removing it. One fixed place makes the
// sweep on New complete. Where Stoke must stay inside a delegated subtree
// (systemd Delegate=yes), set Options.Root to that subtree.
type hierarchy struct {
	v2      bool
	rel     string // parent path inside each hierarchy, e.g. /stoke/4242
	v1      cgroup1.Cgroup
	v1h     cgroup1.Hierarchy
	v2m     *cgroup2.Manager
	swap    bool // memsw (v1) / memory.swap.max (v2) exists, so swap can be limited too
	pidsMax int64

	released bool // delete ran: this Manager's reference is gone (under parentsMu)
}

// v1Subsystems lists only the controllers Stoke sets: the library's default
// list creates a directory in every mounted hierarchy (cpuset, blkio,
// devices, ...), which is slower on every cold start and buys nothing.
func v1Subsystems() ([]cgroup1.Subsystem, error) {
	var out []cgroup1.Subsystem
	for _, s := range []cgroup1.Subsystem{
		cgroup1.NewMemory(cgroupMount), cgroup1.NewCpu(cgroupMount), cgroup1.NewPids(cgroupMount),
	} {
		p, ok := s.(interface{ Path(string) string })
		if !ok {
			continue
		}
		if _, err := os.Stat(p.Path("/")); err == nil {
			out = append(out, s)
		}
	}
	if len(out) == 0 || out[0].Name() != cgroup1.Memory {
		return nil, errors.New("cgroup v1 memory controller is not mounted")
	}
	return out, nil
}

// parents are this process's parent cgroups, by path, with how many open
// Managers use each. Every Manager of a process shares its stoke/<pid>
// (the path holds only the pid), so the first to open creates it and the
// last to close removes it. Before this count, a Manager closing while
// another was open waited its 5 s for the other's stubs and instances to
// leave the parent and then failed ("contains running processes"), and a
// second New swept the first's cgroups as stale. parentsMu is held across
// the making and the removing (and the sweep that comes before the
// making), so a Manager opening while the last one closes finds the parent
// either still counted or gone, never half removed.
var (
	parentsMu sync.Mutex
	parents   = map[string]*parentRef{}
)

type parentRef struct {
	refs int
	h    hierarchy // the shared part: all but pidsMax
}

// openHierarchy sweeps root/stoke (see sweep) and takes a reference to
// the parent cgroup root/stoke/<pid>, creating it if no Manager of this
// process holds it. It returns the cgroups the sweep removed even when it
// fails.
func openHierarchy(root string, pidsMax int64) (*hierarchy, []string, error) {
	rel := filepath.Join("/", root, "stoke", strconv.Itoa(os.Getpid()))
	parentsMu.Lock()
	defer parentsMu.Unlock()
	p := parents[rel]
	swept := sweep(root, p == nil)
	if p != nil {
		p.refs++
		h := p.h
		h.pidsMax = pidsMax
		return &h, swept, nil
	}
	h, err := makeParent(rel, pidsMax)
	if err != nil {
		return nil, swept, err
	}
	parents[rel] = &parentRef{refs: 1, h: *h}
	return h, swept, nil
}

// makeParent creates the parent cgroup rel in each hierarchy.
func makeParent(rel string, pidsMax int64) (*hierarchy, error) {
	h := &hierarchy{rel: rel, pidsMax: pidsMax}
	switch cgroups.Mode() {
	case cgroups.Unavailable:
		return nil, errors.New("no cgroup filesystem mounted at " + cgroupMount)
	case cgroups.Unified:
		h.v2 = true
		m, err := cgroup2.NewManager(cgroupMount, rel, &cgroup2.Resources{})
		if err != nil {
			return nil, fmt.Errorf("create cgroup %s: %w", rel, err)
		}
		// Enable the controllers down to the parent's own subtree_control once
		// here, so each Start only makes its directory and writes its limits.
		// ToggleControllers writes every ancestor of the manager's path, so
		// ask it for a (never created) child of the parent.
		probe, err := cgroup2.Load(rel+"/probe", cgroup2.WithMountpoint(cgroupMount))
		if err == nil {
			err = probe.ToggleControllers([]string{"memory", "cpu", "pids"}, cgroup2.Enable)
		}
		if err != nil {
			_ = m.Delete()
			return nil, fmt.Errorf("enable memory, cpu and pids controllers under %s: %w", rel, err)
		}
		h.v2m = m
		_, err = os.Stat(filepath.Join(cgroupMount, rel, "memory.swap.max"))
		h.swap = err == nil
	default: // Legacy or Hybrid: the controllers are on v1.
		h.v1h = v1Subsystems
		cg, err := cgroup1.New(cgroup1.StaticPath(rel), &specs.LinuxResources{}, cgroup1.WithHierarchy(h.v1h))
		if err != nil {
			// The library leaves the hierarchies it did create behind.
			if partial, lerr := cgroup1.Load(cgroup1.StaticPath(rel), cgroup1.WithHierarchy(h.v1h)); lerr == nil {
				_ = partial.Delete()
			}
			return nil, fmt.Errorf("create cgroup %s: %w", rel, err)
		}
		h.v1 = cg
		_, err = os.Stat(filepath.Join(cgroupMount, "memory", rel, "memory.memsw.limit_in_bytes"))
		h.swap = err == nil
	}
	return h, nil
}

// delete lets go of this Manager's reference to the parent cgroup and,
// when it was the last, removes the parent (the instances in it must be
// gone already). Only the first call per hierarchy counts. The shared
// stoke/ directory stays: removing it when empty raced with another Stoke
// creating its own stoke/<pid> in it (ENOENT halfway through the
// hierarchies), and an empty cgroup directory costs nothing.
func (h *hierarchy) delete(ctx context.Context) error {
	parentsMu.Lock()
	defer parentsMu.Unlock()
	if h.released {
		return nil
	}
	h.released = true
	if p := parents[h.rel]; p != nil {
		if p.refs--; p.refs > 0 {
			return nil
		}
		// Forgotten even if the removal fails: the next Manager then
		// finds no reference, and its sweep removes what is left.
		delete(parents, h.rel)
	}
	var err error
	if h.v2 {
		err = retryRemove(ctx, h.v2m.Delete)
	} else {
		err = retryRemove(ctx, h.v1.Delete)
	}
	if err != nil {
		return fmt.Errorf("remove cgroup %s: %w", h.rel, err)
	}
	return nil
}

// group is one instance's cgroup.
type group struct {
	v2  bool
	dir string // memory.* files and the cgroup.procs listing every member
	v1  cgroup1.Cgroup
	v2m *cgroup2.Manager

	// peak is the peak-memory file, opened at the first reading and kept
	// until remove: it is read after every invocation (at most every
	// peakCacheTTL per instance, which many instances each serving a
	// request every few ms all miss), and opening it each time (path walk,
	// file setup, close) was ~90 % of a reading's CPU (docs/BENCHMARKS.md,
	// issue 14). One more descriptor per instance.
	peakMu   sync.Mutex
	peak     *os.File
	peakGone bool // removed: no more readings
}

// newGroup makes the instance cgroup <parent>/<id> with limits for memoryMB.
func (h *hierarchy) newGroup(id string, memoryMB int) (*group, error) {
	g := &group{v2: h.v2}
	if h.v2 {
		g.dir = filepath.Join(cgroupMount, h.rel, id)
		m, err := h.v2m.NewChild(id, nil)
		if err != nil {
			return nil, fmt.Errorf("create cgroup %s: %w", g.dir, err)
		}
		g.v2m = m
		if err := g.setLimits(h, memoryMB); err != nil {
			_ = m.Delete()
			return nil, err
		}
		return g, nil
	}
	g.dir = filepath.Join(cgroupMount, "memory", h.rel, id)
	cg, err := h.v1.New(id, h.v1Limits(memoryMB))
	if err != nil {
		if cg, lerr := cgroup1.Load(cgroup1.StaticPath(filepath.Join(h.rel, id)), cgroup1.WithHierarchy(h.v1h)); lerr == nil {
			_ = cg.Delete()
		}
		return nil, fmt.Errorf("create cgroup %s: %w", g.dir, err)
	}
	g.v1 = cg
	return g, nil
}

// quota is the CFS quota in µs per cpuPeriodUS for memoryMB, Lambda-style.
func quota(memoryMB int) int64 {
	return max(int64(cpuPeriodUS)*int64(memoryMB)/MBPerCPU, minQuotaUS)
}

// v1Limits are the v1 resources for memoryMB; empty (no limits) for 0.
func (h *hierarchy) v1Limits(memoryMB int) *specs.LinuxResources {
	res := &specs.LinuxResources{}
	if memoryMB <= 0 {
		return res
	}
	limit, q, period := int64(memoryMB)*mib, quota(memoryMB), uint64(cpuPeriodUS)
	res.Memory = &specs.LinuxMemory{Limit: &limit}
	if h.swap {
		// memory+swap equal to memory: no swap at all, so swapping
		// cannot stretch the limit.
		res.Memory.Swap = &limit
	}
	res.CPU = &specs.LinuxCPU{Period: &period, Quota: &q}
	res.Pids = &specs.LinuxPids{Limit: &h.pidsMax}
	return res
}

// setLimits writes the limits for memoryMB into an existing cgroup (none for
// 0). Writing limit files is cheap; only joining a v1 cgroup is slow, which
// is why a stub's cgroup is made without limits ahead of time and given them
// here, on the request path.
func (g *group) setLimits(h *hierarchy, memoryMB int) error {
	if memoryMB <= 0 {
		return nil
	}
	var err error
	if g.v2 {
		limit, q, period := int64(memoryMB)*mib, quota(memoryMB), uint64(cpuPeriodUS)
		res := &cgroup2.Resources{
			Memory: &cgroup2.Memory{Max: &limit},
			CPU:    &cgroup2.CPU{Max: cgroup2.NewCPUMax(&q, &period)},
			Pids:   &cgroup2.Pids{Max: h.pidsMax},
		}
		if h.swap {
			var zero int64
			res.Memory.Swap = &zero
		}
		err = g.v2m.Update(res)
	} else {
		// The library writes memory.limit_in_bytes before memsw when the
		// current limit is higher (here: unlimited), as the kernel requires.
		err = g.v1.Update(h.v1Limits(memoryMB))
	}
	if err != nil {
		return fmt.Errorf("set limits on cgroup %s: %w", g.dir, err)
	}
	return nil
}

// setMemory changes the memory limit (and memory+swap with it) of a cgroup
// with limits. Lowering it below what the cgroup uses fails.
func (g *group) setMemory(h *hierarchy, memoryMB int) error {
	limit := int64(memoryMB) * mib
	if g.v2 {
		if err := g.v2m.Update(&cgroup2.Resources{Memory: &cgroup2.Memory{Max: &limit}}); err != nil {
			return fmt.Errorf("set memory limit on cgroup %s: %w", g.dir, err)
		}
		return nil
	}
	// v1 keeps memory+swap ≥ memory at every step: raising writes memsw
	// first, lowering the limit first. (The library's Update orders the
	// two by swapping the wrong pair of its settings.)
	files := []string{"memory.limit_in_bytes"}
	if h.swap {
		files = append(files, "memory.memsw.limit_in_bytes")
		cur, err := os.ReadFile(filepath.Join(g.dir, "memory.limit_in_bytes"))
		if err != nil {
			return fmt.Errorf("set memory limit on cgroup %s: %w", g.dir, err)
		}
		if n, _ := strconv.ParseInt(strings.TrimSpace(string(cur)), 10, 64); n < limit {
			files[0], files[1] = files[1], files[0]
		}
	}
	v := []byte(strconv.FormatInt(limit, 10))
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(g.dir, f), v, 0); err != nil {
			return fmt.Errorf("set memory limit on cgroup %s: %w", g.dir, err)
		}
	}
	return nil
}

// setCPU writes the CPU quota for memoryMB, or lifts it (boost): an instance
// may run at full speed until it is ready (init_boost), then gets its share.
func (g *group) setCPU(memoryMB int, boost bool) error {
	q, period := quota(memoryMB), uint64(cpuPeriodUS)
	var err error
	if g.v2 {
		qp := &q
		if boost {
			qp = nil // "max"
		}
		err = g.v2m.Update(&cgroup2.Resources{CPU: &cgroup2.CPU{Max: cgroup2.NewCPUMax(qp, &period)}})
	} else {
		if boost {
			q = -1
		}
		err = g.v1.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{Period: &period, Quota: &q}})
	}
	if err != nil {
		return fmt.Errorf("set cpu quota on cgroup %s: %w", g.dir, err)
	}
	return nil
}

// rename gives a stub's cgroup the instance's name, in every hierarchy, so
// the tree shows stoke/<pid>/<id> like a cgroup made for the instance. Only
// v1 can rename a cgroup (within its parent); v2 refuses, and there the
// cgroup keeps its stub name.
func (g *group) rename(h *hierarchy, id string) error {
	if g.v2 {
		return errors.New("cgroup v2 cannot rename")
	}
	from := filepath.Base(g.dir)
	var done []string
	for _, s := range []string{"memory", "cpu", "pids"} {
		parent := filepath.Join(cgroupMount, s, h.rel)
		if _, err := os.Stat(filepath.Join(parent, from)); errors.Is(err, os.ErrNotExist) {
			continue // controller not mounted here (v1Subsystems left it out)
		}
		if err := os.Rename(filepath.Join(parent, from), filepath.Join(parent, id)); err != nil {
			for _, p := range done {
				_ = os.Rename(filepath.Join(p, id), filepath.Join(p, from))
			}
			return err
		}
		done = append(done, parent)
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(filepath.Join(h.rel, id)), cgroup1.WithHierarchy(h.v1h))
	if err != nil {
		for _, p := range done {
			_ = os.Rename(filepath.Join(p, id), filepath.Join(p, from))
		}
		return err
	}
	g.v1, g.dir = cg, filepath.Join(cgroupMount, "memory", h.rel, id)
	return nil
}

// resetPeak restarts the peak-memory watermark from the current use, so what
// a stub's own Go runtime touched before it exec'd the app is not reported
// as the app's. v1 only: v2's memory.peak reset (6.12+) is per open file
// (it would have to be a write to the kept one, peakFile), so on v2 the
// peak can include the stub's few MB.
func (g *group) resetPeak() error {
	if g.v2 {
		return nil
	}
	return os.WriteFile(filepath.Join(g.dir, "memory.max_usage_in_bytes"), []byte("0"), 0)
}

// add moves pid into the cgroup (v1 only; v2 starts the process inside it).
func (g *group) add(pid int) error {
	if g.v2 {
		return nil
	}
	if err := g.v1.AddProc(uint64(pid)); err != nil {
		return fmt.Errorf("add pid %d to cgroup %s: %w", pid, g.dir, err)
	}
	return nil
}

// killAll sends SIGKILL to every process in the cgroup, including those that
// left the instance's process group.
func (g *group) killAll() {
	if g.v2 && g.v2m.Kill() == nil {
		return
	}
	killListed(g.dir)
}

// killListed SIGKILLs each pid in dir/cgroup.procs. A pid can exit and be
// reused between the read and the kill; the window is microseconds and the
// kernel hands out pids in increasing order, so this is accepted.
func killListed(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return 0
	}
	n := 0
	for _, f := range bytes.Fields(b) {
		if pid, err := strconv.Atoi(string(f)); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			n++
		}
	}
	return n
}

// The memory readers read one file each: they run after every invocation,
// and the libraries' Stat() reads every stat file of every controller (see
// BenchmarkMemoryRead). The peak's file is kept open (peakFile).

func (g *group) peakBytes() (uint64, error) {
	f, err := g.peakFile()
	if err != nil {
		return 0, err
	}
	// One pread from offset 0 (ReadAt): a cgroup file is a seq_file, which
	// makes its text anew for a read at offset 0, so the kept file reads
	// as fresh as a new one; os.File holds its descriptor for the call, so
	// a concurrent close (remove) cannot hand the number to another file
	// mid-read. The text is shorter than buf: io.EOF is the usual end.
	var buf [32]byte
	n, err := f.ReadAt(buf[:], 0)
	if err != nil && err != io.EOF {
		return 0, err
	}
	return strconv.ParseUint(string(bytes.TrimSpace(buf[:n])), 10, 64)
}

// peakFile opens the peak-memory file once.
func (g *group) peakFile() (*os.File, error) {
	g.peakMu.Lock()
	defer g.peakMu.Unlock()
	if g.peakGone {
		return nil, fmt.Errorf("cgroup %s: %w", g.dir, os.ErrNotExist)
	}
	if g.peak == nil {
		name := "memory.max_usage_in_bytes"
		if g.v2 {
			name = "memory.peak" // kernel 5.19+
		}
		f, err := os.Open(filepath.Join(g.dir, name))
		if err != nil {
			return nil, err
		}
		g.peak = f
	}
	return g.peak, nil
}

// closePeak closes the kept peak file; later readings fail as for a
// removed cgroup.
func (g *group) closePeak() {
	g.peakMu.Lock()
	defer g.peakMu.Unlock()
	if g.peak != nil {
		_ = g.peak.Close()
		g.peak = nil
	}
	g.peakGone = true
}

func (g *group) currentBytes() (uint64, error) {
	if g.v2 {
		return readUint(filepath.Join(g.dir, "memory.current"))
	}
	return readUint(filepath.Join(g.dir, "memory.usage_in_bytes"))
}

// oomKilled reports whether the kernel OOM-killed anything in the cgroup.
// killedBySIGKILL is the fallback evidence on old v1 kernels (before 4.13)
// that have no oom_kill counter: the limit was hit and the process died of
// SIGKILL.
func (g *group) oomKilled(killedBySIGKILL bool) bool {
	if g.v2 {
		n, err := readKey(filepath.Join(g.dir, "memory.events"), "oom_kill")
		return err == nil && n > 0
	}
	n, err := readKey(filepath.Join(g.dir, "memory.oom_control"), "oom_kill")
	if err == nil {
		return n > 0
	}
	fails, err := readUint(filepath.Join(g.dir, "memory.failcnt"))
	return err == nil && fails > 0 && killedBySIGKILL
}

// remove kills whatever is left and deletes the cgroup, retrying because
// rmdir fails with EBUSY until the kernel has finished tearing down the
// killed tasks.
func (g *group) remove(ctx context.Context) error {
	g.closePeak()
	del := func() error {
		g.killAll()
		if g.v2 {
			return g.v2m.Delete()
		}
		return g.v1.Delete()
	}
	if err := retryRemove(ctx, del); err != nil {
		return fmt.Errorf("remove cgroup %s: %w", g.dir, err)
	}
	return nil
}

func retryRemove(ctx context.Context, del func() error) error {
	deadline := time.Now().Add(5 * time.Second)
	wait := time.Millisecond
	for {
		err := del()
		if err == nil || errors.Is(err, cgroup1.ErrCgroupDeleted) {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
}

// readKey reads "key value" from a flat keyed cgroup file.
func readKey(path, key string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte{' '})
		if ok && string(k) == key {
			return strconv.ParseUint(string(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %q", path, key)
}

// sweep removes stoke/<pid> cgroups left by Stoke processes that are gone
// (crashed, or killed before Close), killing whatever still runs in them. A
// directory named after our own pid is stale too when ownStale says so (no
// Manager of this process holds it): it can only come from an earlier
// process that had the same pid. The caller holds parentsMu.
func sweep(root string, ownStale bool) (removed []string) {
	var bases []string
	if cgroups.Mode() == cgroups.Unified {
		bases = []string{filepath.Join(cgroupMount, root, "stoke")}
	} else {
		for _, s := range []string{"memory", "cpu", "pids"} {
			bases = append(bases, filepath.Join(cgroupMount, s, root, "stoke"))
		}
	}
	self := os.Getpid()
	for _, base := range bases {
		ents, err := os.ReadDir(base)
		if err != nil {
			continue
		}
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || !e.IsDir() {
				continue
			}
			if pid == self && !ownStale {
				continue // another Manager of this process uses it
			}
			if pid != self && syscall.Kill(pid, 0) != syscall.ESRCH {
				continue // that Stoke is alive and owns it
			}
			dir := filepath.Join(base, e.Name())
			if removeTree(dir) == nil {
				removed = append(removed, dir)
			}
		}
	}
	return removed
}

// removeTree kills every process in a cgroup subtree and removes it, deepest
// first.
func removeTree(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			_ = removeTree(filepath.Join(dir, e.Name()))
		}
	}
	if f, err := os.OpenFile(filepath.Join(dir, "cgroup.kill"), os.O_WRONLY, 0); err == nil {
		_, _ = f.WriteString("1")
		_ = f.Close()
	}
	return retryRemove(context.Background(), func() error {
		killListed(dir)
		return os.Remove(dir)
	})
}
