package sandbox

// The stub's side of stub.go: what this binary does when Stoke re-runs it
// as a stub.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Stub flavours, the value of stubEnv.
const (
	flavourPlain  = "1"      // no isolation: exec the spec as it is
	flavourView   = "view"   // namespaces, the shared view pre-placed; an instance
	flavourBuild  = "build"  // namespaces, the host's tree read-only; a build
	flavourUserns = "userns" // holds a user namespace for an idmapping (idmap.go)
)

type stubRequest struct {
	Path string   // resolved like exec.Command does, by Stoke
	Args []string // argv
	Env  []string
	Dir  string
	Iso  *Isolation `json:",omitempty"`
	// Files is how many of the passed fds become the app's fds 3, 4, …;
	// IDMap holds, for each of Iso.ownPaths, the index among the passed
	// fds of the user namespace that idmaps it, or -1.
	Files int
	IDMap []int `json:",omitempty"`
	// NetNS is the index among the passed fds of the network namespace to
	// join, or -1.
	NetNS int
	// Ack asks the stub to answer 'P' once it has done what the request
	// prepares (see runStub), so Stoke knows a prepared stub is ready.
	Ack bool `json:",omitempty"`
}

type stubError struct {
	Op, Path string
	Errno    int // syscall.Errno; 0 when the error was not one
	Msg      string
}

// MaybeRunStub turns this process into a sandbox stub when Stoke started it
// as one, and never returns then. Otherwise it returns at once. Call it first
// thing in main (and in TestMain of tests that start sandboxed processes):
// everything before it runs in every stub.
func MaybeRunStub() {
	flavour := os.Getenv(stubEnv)
	switch flavour {
	case "":
		stubAware.Store(true)
		return
	case flavourUserns:
		// Holds its user namespace until Stoke has opened it, then exits.
		var b [1]byte
		_, _ = os.Stdin.Read(b[:])
		os.Exit(0)
	}
	os.Exit(runStub(flavour))
}

// ctlFd is the stub's end of the control socket, moved off fd 3 (which the
// app's own files may need) and close-on-exec: its closing at exec tells
// Stoke the exec worked.
var ctlFd = 3

func runStub(flavour string) int {
	// Exec from the thread group leader: exec from another thread makes the
	// kernel swap it with the leader first (de_thread), which costs more.
	// Every per-thread setting below (credentials, seccomp) is on this one.
	runtime.LockOSThread()
	fd, err := unix.FcntlInt(3, unix.F_DUPFD_CLOEXEC, 64)
	if err != nil {
		return 1
	}
	unix.Close(3)
	ctlFd = fd
	if flavour != flavourPlain {
		if err := openHostTmp(); err != nil {
			return stubFail("prepare", "", err)
		}
		if _, err := policy(); err != nil {
			return stubFail("prepare", "", err)
		}
		if _, err := archGuard(); err != nil {
			return stubFail("prepare", "", err)
		}
	}
	if flavour == flavourView {
		if err := prePlace(); err != nil {
			return stubFail("prepare the view", "", err)
		}
	}
	// Last before ready: shed what the exec would otherwise unmap.
	trimForExec()
	if _, err := unix.Write(ctlFd, []byte{'R'}); err != nil {
		return 1
	}
	// Two requests: the first is the function's config (its view, its
	// cwd), which the stub prepares before the second, the instance's own
	// (program, argv, env, files), says go. Stoke may send the first long
	// before the second (a prepared stub, prepare.go) or right before it.
	// Nothing of the function runs before the second: it is the exec.
	prep, pfds, err := readRequest()
	if err != nil {
		if errors.Is(err, errStubClosed) {
			return 0 // EOF: the Manager closed, or Stoke is gone
		}
		return stubFail("decode", "", err)
	}
	if prep.Iso != nil {
		if err := isolate(flavour, prep, pfds); err != nil {
			return stubFail("isolate", prep.Path, err)
		}
	} else if prep.Dir != "" {
		if err := syscall.Chdir(prep.Dir); err != nil {
			return stubFail("chdir", prep.Dir, err)
		}
	}
	for _, fd := range pfds {
		unix.Close(fd) // joined or mounted already
	}
	if prep.Ack {
		if _, err := unix.Write(ctlFd, []byte{'P'}); err != nil {
			return 1
		}
	}
	req, fds, err := readRequest()
	if err != nil {
		if errors.Is(err, errStubClosed) {
			return 0 // discarded before it was claimed
		}
		return stubFail("decode", "", err)
	}
	// The function's scheduling policy (sched.go), set on this thread,
	// which execs: a default, so a refusal leaves Stoke's own.
	_, _ = setBatch()
	if prep.Iso != nil {
		// Last, right before the exec: the Go runtime's other threads keep
		// root (creds.go), which the exec ends.
		if err := dropPrivileges(prep.Iso.UID, prep.Iso.GID); err != nil {
			return stubFail("isolate", req.Path, err)
		}
	}
	if err := placeFiles(fds[:req.Files]); err != nil {
		return stubFail("pass files", "", err)
	}
	// Exec replaces the stub's env with exactly req.Env (stubEnv included
	// nowhere) and restores the RLIMIT_NOFILE the Go runtime raised.
	err = syscall.Exec(req.Path, req.Args, req.Env)
	if prep.Iso != nil && errors.Is(err, syscall.ENOENT) {
		return stubFail("fork/exec", req.Path, fmt.Errorf("%w (the function sees only its cwd, writable paths, /tmp and the system directories %v)", err, systemDirs))
	}
	return stubFail("fork/exec", req.Path, err)
}

var errStubClosed = errors.New("control socket closed")

// readRequest reads the length-prefixed JSON request and the fds that come
// with its first bytes. It reads no byte past the request: the next one
// may already be queued behind it.
func readRequest() (*stubRequest, []int, error) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*maxStubFds))
	n, oobn, _, _, err := unix.Recvmsg(ctlFd, buf[:4], oob, unix.MSG_CMSG_CLOEXEC)
	for errors.Is(err, unix.EINTR) {
		n, oobn, _, _, err = unix.Recvmsg(ctlFd, buf[:4], oob, unix.MSG_CMSG_CLOEXEC)
	}
	if err != nil || n == 0 {
		return nil, nil, errStubClosed
	}
	var fds []int
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, nil, err
		}
		for _, m := range msgs {
			rights, err := unix.ParseUnixRights(&m)
			if err != nil {
				return nil, nil, err
			}
			fds = append(fds, rights...)
		}
	}
	for n < 4 {
		k, err := unix.Read(ctlFd, buf[n:4])
		if err != nil || k == 0 {
			return nil, nil, errStubClosed
		}
		n += k
	}
	size := int(binary.BigEndian.Uint32(buf))
	if size > maxStubRequest {
		return nil, nil, fmt.Errorf("request of %d bytes", size)
	}
	if 4+size > len(buf) {
		buf = append(buf[:n], make([]byte, 4+size-n)...)
	}
	for n < 4+size {
		k, err := unix.Read(ctlFd, buf[n:4+size])
		if err != nil || k == 0 {
			return nil, nil, errStubClosed
		}
		n += k
	}
	req, err := decodeRequest(buf[4:4+size], len(fds))
	if err != nil {
		return nil, nil, err
	}
	return req, fds, nil
}

// decodeRequest decodes a request that came with nfds fds.
func decodeRequest(b []byte, nfds int) (*stubRequest, error) {
	var req stubRequest
	if err := json.Unmarshal(b, &req); err != nil {
		return nil, err
	}
	if req.Files < 0 || req.Files > nfds {
		return nil, fmt.Errorf("%d files announced, %d passed", req.Files, nfds)
	}
	return &req, nil
}

// isolate gives this stub the function's view and network; its user
// (dropPrivileges) comes right before the exec.
func isolate(flavour string, req *stubRequest, fds []int) error {
	iso := req.Iso
	idmap := make([]int, len(iso.ownPaths()))
	for i := range idmap {
		idmap[i] = -1
		if i < len(req.IDMap) && req.IDMap[i] >= 0 {
			if req.IDMap[i] >= len(fds) {
				return fmt.Errorf("idmap %d: no such fd", req.IDMap[i])
			}
			idmap[i] = fds[req.IDMap[i]]
		}
	}
	// /proc/self/cgroup shows "/", not Stoke's tree.
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return fmt.Errorf("cgroup namespace: %w", err)
	}
	switch {
	case req.NetNS >= 0 && req.NetNS < len(fds):
		if err := unix.Setns(fds[req.NetNS], unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("join the network namespace: %w", err)
		}
	case iso.NoNetwork:
		if err := loopbackOnly(); err != nil {
			return err
		}
	}
	var err error
	switch flavour {
	case flavourView:
		err = enterView(iso, idmap)
	case flavourBuild:
		err = enterBuildView(iso, idmap)
	default:
		err = fmt.Errorf("a %q stub cannot isolate", flavour)
	}
	if err != nil {
		return err
	}
	if req.Dir != "" {
		if err := syscall.Chdir(req.Dir); err != nil {
			return fmt.Errorf("chdir %s: %w", req.Dir, err)
		}
	}
	return nil
}

// placeFiles makes files the app's fds 3, 4, … (inherited across exec).
func placeFiles(files []int) error {
	if len(files) == 0 {
		return nil
	}
	// Move them out of the way first: a received fd may sit where another
	// must go.
	high := make([]int, len(files))
	for i, f := range files {
		h, err := unix.FcntlInt(uintptr(f), unix.F_DUPFD_CLOEXEC, 100)
		if err != nil {
			return err
		}
		high[i] = h
	}
	for i, h := range high {
		if err := unix.Dup3(h, 3+i, 0); err != nil {
			return err
		}
	}
	return nil
}

// loopbackOnly gives the thread (and the app it becomes) a network
// namespace of its own with only lo, up.
func loopbackOnly() error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	return loUp()
}

func stubFail(op, path string, err error) int {
	e := stubError{Op: op, Path: path, Msg: err.Error()}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		e.Errno = int(errno)
	}
	b, _ := json.Marshal(e)
	_, _ = unix.Write(ctlFd, b)
	return 127
}

// asError rebuilds the stub's failure as the *os.PathError os/exec would
// have returned, so errors.Is(err, fs.ErrNotExist) and friends still work.
func (e stubError) asError() error {
	if e.Errno != 0 {
		return &os.PathError{Op: e.Op, Path: e.Path, Err: errnoWithMsg{syscall.Errno(e.Errno), e.Msg}}
	}
	return fmt.Errorf("%s %s: %s", e.Op, e.Path, e.Msg)
}

// errnoWithMsg is an errno that says more than strerror (what the stub was
// doing), and still matches errors.Is(err, fs.ErrNotExist) and friends.
type errnoWithMsg struct {
	errno syscall.Errno
	msg   string
}

func (e errnoWithMsg) Error() string        { return e.msg }
func (e errnoWithMsg) Unwrap() error        { return e.errno }
func (e errnoWithMsg) Is(target error) bool { return e.errno.Is(target) }
