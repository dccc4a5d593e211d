package sandbox

// Prepared stubs: what a cold start does that depends only on the
// function's config, not on the instance, done before the claim. When a
// spec starts in a stub, the Manager keeps one more stub ready for the
// same config: its cgroup limits written (and the init boost), and, when
// isolating, its cgroup namespace, the function's view (the idmapped code
// mount, hidden paths, the chroot) and its cwd in place. The next cold
// start with that config sends it only the instance's part (program,
// argv, env, files) and the stub drops its privileges, loads the seccomp
// filter and execs.
//
// A prepared stub never runs the function's code before it is claimed: it
// is this binary, waiting on its control socket, root in its own
// namespaces and view (as an idle stub is root in its own). Nothing is
// started or billed early. Prepared stubs are bounded (Options.Prepared,
// one per config, the least recently used config dropped first) and
// DiscardPrepared kills them all, which the server calls whenever the
// functions change (a deploy, a removal): a view prepared before then may
// show an older tree or miss a new function's directory among those it
// hides. A prepared stub whose config no longer matches what a start asks
// for (another memory size, other hidden paths) is simply not used.

import (
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"time"
)

// DefaultPrepared is how many prepared stubs a Manager keeps by default:
// one each for the configs of the last few cold starts.
const DefaultPrepared = 4

// template is the config part of a spec: what a stub is prepared with.
type template struct {
	key     string // "" when the spec cannot be prepared ahead (see Manager.template)
	gen     uint64 // Manager.prepGen when the spec was asked for
	flavour string
	path    string // the program, resolved on the host
	memMB   int
	boost   bool
	dir     string
	iso     *Isolation // Hide resolved (Others asked once), nil without isolation
	netns   *NetNS     // an instance's own network namespace: never prepared ahead
}

// template returns spec's config part, path being the resolved program.
func (m *Manager) template(spec Spec, path, flavour string) *template {
	t := &template{flavour: flavour, path: path, memMB: spec.MemoryMB, boost: spec.InitBoost, dir: spec.Dir}
	if spec.Isolation != nil && flavour != flavourPlain {
		iso := *spec.Isolation
		iso.Hide, iso.Others = iso.hides(), nil
		t.iso, t.netns = &iso, iso.NetNS
	}
	m.mu.Lock()
	t.gen = m.prepGen
	want := m.prepMax > 0
	m.mu.Unlock()
	if !want || spec.Once || flavour == flavourBuild || (t.iso != nil && (t.iso.NoNetwork || t.netns != nil)) {
		return t // a build, or a network namespace of the instance's own
	}
	// The view mounts the function's own directories as they are when it
	// is prepared: one replaced as a whole since (moved aside and
	// recreated) makes another key, so the stale view is not used.
	var ids []uint64
	if t.iso != nil {
		for _, p := range t.iso.ownPaths() {
			var st syscall.Stat_t
			if syscall.Stat(p, &st) != nil {
				return t // the start reports it
			}
			ids = append(ids, st.Dev, st.Ino)
		}
	}
	b, err := json.Marshal(struct {
		F, P, D string
		M       int
		B       bool
		I       *Isolation
		N       []uint64
	}{flavour, path, t.dir, t.memMB, t.boost, t.iso, ids})
	if err == nil {
		t.key = string(b)
	}
	return t
}

// sendConfig hands s the config part (its limits, its view). With ack it
// waits until the stub has done its part; without, the stub does it while
// the caller goes on (a cold start sends the instance's part next).
func (m *Manager) sendConfig(s *stub, t *template, ack bool, deadline time.Time) error {
	req := stubRequest{Path: t.path, Dir: t.dir, NetNS: -1, Ack: ack}
	var fds []int
	var files []*os.File
	if t.iso != nil {
		req.Iso = t.iso
		idmaps, err := m.idmaps(t.iso)
		if err != nil {
			return err
		}
		for _, f := range idmaps {
			if f == nil {
				req.IDMap = append(req.IDMap, -1)
				continue
			}
			req.IDMap = append(req.IDMap, len(fds))
			fds = append(fds, int(f.Fd()))
			files = append(files, f)
		}
		if t.netns != nil {
			req.NetNS = len(fds)
			fds = append(fds, int(t.netns.f.Fd()))
			files = append(files, t.netns.f)
		}
	}
	if ack {
		_ = s.ctl.SetDeadline(deadline)
	}
	// Sent before the limits are written: the stub builds the view while
	// Stoke writes them. It cannot exec before the instance's part, which
	// comes after the limits.
	if err := s.send(req, fds, files); err != nil {
		return fmt.Errorf("hand config to stub: %w", err)
	}
	if s.cg != nil && t.memMB > 0 {
		if err := s.cg.setLimits(m.h, t.memMB); err != nil {
			return err
		}
		if t.boost {
			if err := s.cg.setCPU(t.memMB, true); err != nil {
				return err
			}
			s.boosted = true
		}
	}
	if !ack {
		return nil
	}
	if err, said := s.answer('P'); err != nil {
		if !said {
			err = fmt.Errorf("stub did not prepare: %w", err)
		}
		return err
	}
	_ = s.ctl.SetDeadline(time.Time{})
	s.key = t.key
	return nil
}

// takePrepared hands out the live prepared stub for key, or nil.
func (m *Manager) takePrepared(t *template) *stub {
	if t.key == "" {
		return nil
	}
	m.mu.Lock()
	s := m.prepped[t.key]
	delete(m.prepped, t.key)
	m.mu.Unlock()
	if s == nil {
		return nil
	}
	if !s.alive() {
		m.log.Warn("sandbox: prepared stub died", "pid", s.cmd.Process.Pid)
		_ = s.kill()
		return nil
	}
	return s
}

// wantPrepared asks for a prepared stub for t's config, after delay (as a
// refill: the cold start that asks is still starting its app). The
// least recently asked config beyond Options.Prepared is dropped.
func (m *Manager) wantPrepared(t *template, delay time.Duration) {
	if t.key == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || t.gen != m.prepGen {
		return // the functions changed since this start began
	}
	for i, w := range m.prepWant {
		if w.key == t.key {
			m.prepWant = append(m.prepWant[:i], m.prepWant[i+1:]...)
			break
		}
	}
	m.prepWant = append(m.prepWant, t)
	var evicted []*stub
	for len(m.prepWant) > m.prepMax {
		old := m.prepWant[0]
		m.prepWant = m.prepWant[1:]
		if s := m.prepped[old.key]; s != nil {
			delete(m.prepped, old.key)
			evicted = append(evicted, s)
		}
	}
	if len(evicted) > 0 {
		m.fillers.Add(1) // Close waits for it
		go func() {
			defer m.fillers.Done()
			killStubs(m, evicted)
		}()
	}
	m.prepareLocked(delay)
}

// prepareLocked makes, in the background, a prepared stub for each wanted
// config that has none, one at a time. The caller holds m.mu.
func (m *Manager) prepareLocked(delay time.Duration) {
	if m.preparing || m.closed {
		return
	}
	m.preparing = true
	m.fillers.Add(1)
	go func() {
		defer m.fillers.Done()
		m.pause(delay)
		for {
			m.mu.Lock()
			var t *template
			for i := len(m.prepWant) - 1; i >= 0; i-- { // the most recent first
				if w := m.prepWant[i]; m.prepped[w.key] == nil {
					t = w
					break
				}
			}
			if m.closed || t == nil {
				m.preparing = false
				m.mu.Unlock()
				return
			}
			name := nextStubName()
			one := make(chan struct{})
			m.prepOne = one
			m.mu.Unlock()

			s, err := m.newStub(name, t.flavour)
			if err == nil {
				err = m.sendConfig(s, t, true, time.Now().Add(stubExecTimeout))
				if err != nil {
					_ = s.kill()
				}
			}
			m.mu.Lock()
			m.prepOne = nil
			if err != nil {
				// Not retried: that config starts the slower way, as
				// without prepared stubs.
				m.dropWantLocked(t.key)
				m.mu.Unlock()
				close(one)
				m.log.Warn("sandbox: cannot prepare a stub; cold starts of that config take the slower path", "err", err)
				continue
			}
			if m.closed || t.gen != m.prepGen || !m.wantedLocked(t.key) || m.prepped[t.key] != nil {
				m.mu.Unlock()
				_ = s.kill() // discarded or dropped while it was prepared
				close(one)
				continue
			}
			m.prepped[t.key] = s
			m.mu.Unlock()
			close(one)
		}
	}()
}

func (m *Manager) wantedLocked(key string) bool {
	for _, w := range m.prepWant {
		if w.key == key {
			return true
		}
	}
	return false
}

func (m *Manager) dropWantLocked(key string) {
	for i, w := range m.prepWant {
		if w.key == key {
			m.prepWant = append(m.prepWant[:i], m.prepWant[i+1:]...)
			return
		}
	}
}

// DiscardPrepared kills every prepared stub and removes its cgroup, and
// forgets the configs they were prepared for; a stub being prepared now
// is killed when it is done. Call it whenever the functions change: a
// prepared view shows the tree (and hides the paths) of when it was made.
// It returns once the stubs and their cgroups are gone, the one being
// prepared included.
func (m *Manager) DiscardPrepared() {
	m.mu.Lock()
	m.prepGen++
	m.prepWant = nil
	var ss []*stub
	for k, s := range m.prepped {
		ss = append(ss, s)
		delete(m.prepped, k)
	}
	one := m.prepOne
	m.mu.Unlock()
	killStubs(m, ss)
	if one != nil {
		<-one // it sees the new prepGen and kills what it made
	}
}

func killStubs(m *Manager, ss []*stub) {
	for _, s := range ss {
		if err := s.kill(); err != nil {
			m.log.Error("sandbox: cgroup left behind by a prepared stub", "err", err)
		}
	}
}

// stopPrepared is Close's part: the prepared stubs, to kill.
func (m *Manager) stopPreparedLocked() []*stub {
	var ss []*stub
	for k, s := range m.prepped {
		ss = append(ss, s)
		delete(m.prepped, k)
	}
	m.prepWant = nil
	return ss
}
