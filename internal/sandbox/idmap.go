package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// idmapKey names one idmapping: files owned by Owner on disk appear as
// owned by the function's user through the mount.
type idmapKey struct {
	OwnerUID, OwnerGID, UID, GID int
}

// canIsolate says why this process cannot isolate functions, if it cannot.
func canIsolate() error {
	if os.Geteuid() != 0 {
		return errors.New("sandbox: isolating functions needs root (run Stoke as root, or turn isolation off)")
	}
	if !stubAware.Load() {
		return errors.New("sandbox: isolating functions needs stub processes: this binary did not call sandbox.MaybeRunStub")
	}
	return nil
}

// idmaps returns, for each of iso.ownPaths, the user namespace
// whose idmapping shows the path's owner as the function's user, or nil
// where the function's user owns it already. The Manager keeps them (one
// per owner and user) until Close.
func (m *Manager) idmaps(iso *Isolation) ([]*os.File, error) {
	paths := iso.ownPaths()
	out := make([]*os.File, len(paths))
	for i, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("isolation: %w", err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		k := idmapKey{OwnerUID: int(st.Uid), OwnerGID: int(st.Gid), UID: iso.UID, GID: iso.GID}
		if k.OwnerUID == k.UID && k.OwnerGID == k.GID {
			continue
		}
		if out[i], err = m.userns(k); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// userns returns the user namespace for k, making it the first time: a
// process is cloned into a new user namespace with that one-id mapping,
// and the namespace is kept open after the process exits (~2-4 ms, once).
func (m *Manager) userns(k idmapKey) (*os.File, error) {
	m.idmapMu.Lock()
	defer m.idmapMu.Unlock()
	if f := m.idmapNS[k]; f != nil {
		return f, nil
	}
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{os.Args[0]}
	cmd.Env = []string{stubEnv + "=" + flavourUserns, "GOMAXPROCS=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: k.OwnerUID, HostID: k.UID, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: k.OwnerGID, HostID: k.GID, Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	hold, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("isolation: make a user namespace for an idmapped mount: %w", err)
	}
	f, err := os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/user")
	hold.Close() // it exits
	_ = cmd.Wait()
	if err != nil {
		return nil, fmt.Errorf("isolation: open the idmapping's user namespace: %w", err)
	}
	m.idmapNS[k] = f
	return f, nil
}

func (m *Manager) closeIdmaps() {
	m.idmapMu.Lock()
	defer m.idmapMu.Unlock()
	for k, f := range m.idmapNS {
		f.Close()
		delete(m.idmapNS, k)
	}
}
