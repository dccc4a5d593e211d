package sandbox

import (
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// CgroupDirs lists the directories that hold the cgroup of instance id (the
// parent cgroup when id is ""); nil when limits are not enforced.
func CgroupDirs(m *Manager, id string) []string {
	if m.h == nil {
		return nil
	}
	if m.h.v2 {
		return []string{filepath.Join(cgroupMount, m.h.rel, id)}
	}
	var out []string
	for _, s := range []string{"memory", "cpu", "pids"} {
		out = append(out, filepath.Join(cgroupMount, s, m.h.rel, id))
	}
	return out
}

// IdleStubs is how many stubs are ready for Start.
func IdleStubs(m *Manager) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.stubs)
}

// FromStub reports whether p was started in a stub.
func FromStub(p Process) bool { return p.(*process).stub }

// StopIdleStubs stops (SIGSTOP) every idle stub, so the next Start hands
// its spec to one that never execs, and returns their pids.
func StopIdleStubs(m *Manager) []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	var pids []int
	for _, s := range m.stubs {
		_ = s.cmd.Process.Signal(syscall.SIGSTOP)
		pids = append(pids, s.cmd.Process.Pid)
	}
	return pids
}

// SetStubExecTimeout sets how long a stub may take to exec, for a test.
func SetStubExecTimeout(d time.Duration) (restore func()) {
	old := stubExecTimeout
	stubExecTimeout = d
	return func() { stubExecTimeout = old }
}

var UsedMB = usedMB

// IdleStubPids lists the pids of the idle stubs.
func IdleStubPids(m *Manager) []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	var pids []int
	for _, s := range m.stubs {
		pids = append(pids, s.cmd.Process.Pid)
	}
	return pids
}

var DropFilePages = dropFilePages

// LoadSeccomp installs the functions' seccomp filters on the calling
// thread, as a stub does before it execs the app.
func LoadSeccomp() error { return loadSeccomp() }

// LoadAllowAllSeccomp installs a filter that allows everything: what any
// filter costs a system call, whatever its program.
func LoadAllowAllSeccomp() error {
	return loadFilter([]bpf.RawInstruction{{Op: 0x06, K: unix.SECCOMP_RET_ALLOW}}) // ret #ALLOW
}

// PreparedStubs lists the pids of the prepared stubs (prepare.go).
func PreparedStubs(m *Manager) []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	var pids []int
	for _, s := range m.prepped {
		pids = append(pids, s.cmd.Process.Pid)
	}
	return pids
}

// PreparedCgroup is the memory cgroup directory of the prepared stub pid.
func PreparedCgroup(m *Manager, pid int) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.prepped {
		if s.cmd.Process.Pid == pid && s.cg != nil {
			return s.cg.dir
		}
	}
	return ""
}

// FromPrepared reports whether p was started in a prepared stub.
func FromPrepared(p Process) bool { return p.(*process).prepared }

// PreparedConfigs is how many configs m keeps a prepared stub for.
func PreparedConfigs(m *Manager) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.prepWant)
}
