package sandbox

import "path/filepath"

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
