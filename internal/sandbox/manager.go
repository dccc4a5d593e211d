package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// DefaultPidsMax caps the tasks of one instance, so a fork bomb stays inside
// its sandbox.
const DefaultPidsMax = 1024

// Options tune a Manager. The zero value is what production wants.
type Options struct {
	// DisableCgroups runs processes without cgroups, as on a host where they
	// cannot be created (non-root, read-only /sys/fs/cgroup).
	DisableCgroups bool
	// Root is the cgroup path under which stoke/<pid> is made in each
	// hierarchy; "" means the hierarchy root. Set it to a delegated subtree
	// when Stoke may not write elsewhere.
	Root string
	// PidsMax is the tasks limit of each instance; 0 means DefaultPidsMax.
	PidsMax int64
	// Stubs is how many idle stub processes, each already in its own cgroup,
	// are kept for Start (see stub.go); 0 means DefaultStubs, negative none.
	// Stubs need the binary's main to call MaybeRunStub first; when this
	// process has not, there are none.
	Stubs int
	// Prepared is how many stubs are kept prepared ahead for the configs
	// of recent starts (prepare.go); 0 means DefaultPrepared, negative none.
	// They come on top of Stubs.
	Prepared int
	// Isolate runs every process as its Spec.Isolation says: the
	// function's own user, namespaces and view (isolate.go). It needs root
	// and stubs (MaybeRunStub); NewWithOptions fails without them.
	Isolate bool
}

// Manager starts sandboxed processes and owns their cgroups.
//
// Tested on a cgroup v1 (hybrid) host only. The v2 code path (CgroupFD start,
// memory.peak, memory.events, cgroup.kill, subtree_control) follows the
// kernel and library documentation but has not run here.
type Manager struct {
	log  *slog.Logger
	opts Options
	h    *hierarchy // nil: limits are not enforced

	mu       sync.Mutex
	procs    map[string]*process // by Spec.ID, while alive
	closed   bool
	starting sync.WaitGroup // Starts in flight, which Close waits for

	idmapMu sync.Mutex
	idmapNS map[idmapKey]*os.File // user namespaces for idmapped mounts (idmap.go)

	stubs     []*stub // idle, ready
	stubsWant int     // pool size; 0 once making stubs failed
	filling   bool    // a refill goroutine runs
	fillers   sync.WaitGroup
	quit      chan struct{} // closed by Close: a waiting refill gives up

	prepMax   int              // Options.Prepared; 0 when there are none
	prepGen   uint64           // DiscardPrepared's count: a start from before it prepares nothing
	prepWant  []*template      // configs to keep a prepared stub for, least recent first
	prepped   map[string]*stub // prepared, by template key
	preparing bool             // a prepare goroutine runs
	// prepOne is closed when the stub being prepared now (if any) is
	// kept or killed: DiscardPrepared waits for it.
	prepOne chan struct{}
}

// New makes a Manager with the default Options.
func New(logger *slog.Logger) (*Manager, error) {
	return NewWithOptions(logger, Options{})
}

// NewWithOptions makes a Manager. It first removes cgroups that Stoke
// processes which are no longer alive left behind, then creates the parent
// cgroup stoke/<pid>, or shares it with the Managers of this process that
// have it open already (their instance ids then share one namespace). If
// cgroups cannot be used it still works, without limits, and says so once,
// loudly.
func NewWithOptions(logger *slog.Logger, opts Options) (*Manager, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if opts.PidsMax <= 0 {
		opts.PidsMax = DefaultPidsMax
	}
	switch {
	case opts.Stubs == 0:
		opts.Stubs = DefaultStubs
	case opts.Stubs < 0:
		opts.Stubs = 0
	}
	switch {
	case opts.Prepared == 0:
		opts.Prepared = DefaultPrepared
	case opts.Prepared < 0:
		opts.Prepared = 0
	}
	m := &Manager{log: logger, opts: opts, procs: map[string]*process{}, stubsWant: opts.Stubs, quit: make(chan struct{}),
		idmapNS: map[idmapKey]*os.File{}, prepMax: opts.Prepared, prepped: map[string]*stub{}}
	if opts.Isolate {
		if err := canIsolate(); err != nil {
			return nil, err
		}
		if opts.Stubs <= 0 {
			opts.Stubs = DefaultStubs // isolated processes start only in stubs
			m.opts, m.stubsWant = opts, opts.Stubs
		}
	}
	if m.stubsWant > 0 && !stubAware.Load() {
		// Re-running a binary that does not handle stubEnv would run its
		// main (or a test binary's tests) instead.
		logger.Info("sandbox: no stub processes: this binary did not call sandbox.MaybeRunStub")
		m.stubsWant, m.prepMax = 0, 0
	}
	reason := "disabled by Options.DisableCgroups"
	if !opts.DisableCgroups {
		h, swept, err := openHierarchy(opts.Root, opts.PidsMax)
		for _, dir := range swept {
			logger.Info("sandbox: removed cgroup left by a Stoke process that is gone", "cgroup", dir)
		}
		if err == nil {
			m.h = h
			if err := m.begin(); err != nil {
				return nil, err
			}
			return m, nil
		}
		reason = err.Error()
	}
	logger.Warn("sandbox: MEMORY AND CPU LIMITS ARE NOT ENFORCED: cannot use cgroups; functions run unconstrained and max memory is not measured",
		"reason", reason)
	if err := m.begin(); err != nil {
		return nil, err
	}
	return m, nil
}

// begin fills the stub pool. An isolating Manager makes its first stub
// now, so a host that cannot isolate (no mount namespaces, an old kernel)
// is found out here rather than at the first cold start.
func (m *Manager) begin() error {
	if m.opts.Isolate {
		s, err := m.newStub(nextStubName(), flavourView)
		if err != nil {
			if m.h != nil {
				_ = m.h.delete(context.Background())
			}
			return fmt.Errorf("sandbox: cannot isolate functions here: %w", err)
		}
		m.stubs = append(m.stubs, s)
	}
	m.mu.Lock()
	m.refillLocked(0)
	m.mu.Unlock()
	return nil
}

// Enforced reports whether processes run in cgroups with limits.
func (m *Manager) Enforced() bool { return m.h != nil }

// Isolated reports whether processes run isolated (Options.Isolate).
func (m *Manager) Isolated() bool { return m.opts.Isolate }

// Start starts spec's process in a new cgroup named spec.ID: in an idle stub
// when one is ready (its Started is when the stub was handed the spec),
// else by fork and exec. A stub that does not exec by ctx's deadline (at
// most stubExecTimeout) is killed and Start fails.
func (m *Manager) Start(ctx context.Context, spec Spec) (Process, error) {
	if len(spec.Args) == 0 {
		return nil, fmt.Errorf("start sandbox %s: no command", spec.ID)
	}
	// Reserve the id while starting, so a concurrent Start cannot share the cgroup.
	if err := m.reserve(ctx, spec.ID); err != nil {
		return nil, err
	}
	defer m.starting.Done()

	var p *process
	var err error
	switch {
	case !m.opts.Isolate:
		p, err = m.startFromStub(ctx, spec)
		if p == nil && err == nil {
			p, err = start(m, spec)
		}
	case spec.Isolation == nil:
		err = fmt.Errorf("start sandbox %s: this Manager isolates every process and the spec says nothing of its isolation", spec.ID)
	default:
		err = spec.Isolation.validate()
		if err == nil && !spec.Isolation.Build {
			p, err = m.startFromStub(ctx, spec)
		}
		if p == nil && err == nil {
			p, err = m.startInNewStub(ctx, spec)
		}
	}
	m.mu.Lock()
	if err != nil {
		delete(m.procs, spec.ID)
	} else {
		m.procs[spec.ID] = p
	}
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	p.begin()
	return p, nil
}

func (m *Manager) forget(p *process) {
	m.mu.Lock()
	if m.procs[p.id] == p {
		delete(m.procs, p.id)
	}
	m.mu.Unlock()
}

// Close kills every process the Manager started (no grace: callers that want
// a graceful stop Stop their processes first) and its idle stubs, waits for
// them and removes every cgroup it made, and the parent cgroup when no other
// Manager of this process still uses it.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.quit)
	}
	m.mu.Unlock()
	m.starting.Wait()
	m.fillers.Wait() // a refill sees closed and kills what it made

	m.mu.Lock()
	stubs := append(m.stubs, m.stopPreparedLocked()...)
	m.stubs = nil
	var ps []*process
	for _, p := range m.procs {
		if p != nil {
			ps = append(ps, p)
		}
	}
	m.mu.Unlock()

	errs := make([]error, len(ps)+len(stubs))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() { errs[i] = p.Stop(ctx, 0) })
	}
	for i, s := range stubs {
		wg.Go(func() { errs[len(ps)+i] = s.kill() })
	}
	wg.Wait()
	m.closeIdmaps()
	if m.h != nil {
		errs = append(errs, m.h.delete(ctx))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close sandbox manager: %w", err)
	}
	return nil
}
