package sandbox

// Isolation: what keeps a function's processes apart from Stoke and from
// other functions (docs/SECURITY.md is the user's view of it). The work is
// split so that a cold start pays for as little of it as possible:
//
//   - when a stub is made (off the request path) it is cloned into its own
//     mount, PID, IPC and UTS namespaces and builds the shared part of the
//     function's view on a tmpfs: the system's read-only directories, /dev,
//     /proc, /tmp (view.go, prePlace);
//   - when it is handed a spec it adds what is the function's own (its code,
//     read-only; paths granted writable; a /tmp size), hides Stoke's files,
//     makes it the root (chroot), then gives up root for the function's user
//     (creds.go) under a seccomp filter (seccomp.go) and execs the app.
//
// The function's code and writable paths are shown through idmapped mounts
// (idmap.go): their owner on disk appears as the function's user, so Stoke
// never chowns anything and a checkout owned by root (or mode 0700) still
// works, read-only where it must be.

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// DefaultTmpMB is the size of an instance's /tmp unless the spec says
// otherwise: Lambda's default ephemeral storage.
const DefaultTmpMB = 512

// Isolation says who an instance runs as and what it sees. A nil
// *Isolation in a Spec means none (the Manager runs without isolation).
type Isolation struct {
	UID, GID int // the function's own user and group; never 0
	// Code is the function's directory (its cwd), shown read-only at its
	// own path, like Lambda's /var/task.
	Code string
	// Writable are absolute paths shown read-write at their own paths
	// (they must exist).
	Writable []string
	// Hide are absolute paths (data_dir, the config file) replaced by an
	// empty directory or file wherever they fall inside the view; a path
	// that holds the function's own code or writable path is not hidden.
	Hide []string
	// Others, when set, lists more paths to hide, asked at each start: the
	// directories of the other functions deployed now.
	Others func() []string `json:"-"`
	// TmpMB sizes the private /tmp (memory-backed: what it holds also
	// counts toward the memory limit); 0 means DefaultTmpMB.
	TmpMB int
	// NoNetwork gives the instance its own network namespace with only a
	// loopback interface: NetNS when set (so Stoke can reach in), else a
	// new one.
	NoNetwork bool
	NetNS     *NetNS `json:"-"`
	// Build is the view of a build command: the whole host read-only
	// (compilers, module roots) but for Hide, with Code writable.
	Build bool
	// Home, for a build, is a directory kept across builds (toolchain
	// caches), shown read-write at /tmp/home: its HOME.
	Home string
}

// buildHome is where a build sees Isolation.Home.
const buildHome = "/tmp/home"

// ownPaths are the host paths shown as the function's own, in the order
// of stubRequest.IDMap: Code, each of Writable, then Home for a build.
func (iso *Isolation) ownPaths() []string {
	ps := append([]string{iso.Code}, iso.Writable...)
	if iso.Build && iso.Home != "" {
		ps = append(ps, iso.Home)
	}
	return ps
}

// validate checks what Start relies on; the config package reports the
// same problems to the user with file and line first.
func (iso *Isolation) validate() error {
	if iso.UID <= 0 || iso.GID <= 0 {
		return fmt.Errorf("isolation: uid %d gid %d: a function never runs as root (uid or gid 0)", iso.UID, iso.GID)
	}
	paths := append(iso.ownPaths(), iso.Hide...)
	for _, p := range paths {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return fmt.Errorf("isolation: %q is not a clean absolute path", p)
		}
	}
	for _, w := range append([]string{iso.Code}, iso.Writable...) {
		if w == "/" || w == "/tmp" || systemDir(w) {
			return fmt.Errorf("isolation: %s is (inside) a directory the sandbox makes or shares read-only with every function", w)
		}
	}
	if iso.TmpMB < 0 {
		return errors.New("isolation: negative /tmp size")
	}
	return nil
}

// systemDirs are shown read-only to every instance: what programs need to
// run (binaries, libraries, /etc for DNS, users, TLS roots, time zones).
var systemDirs = []string{"/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// systemDir reports whether p is one of systemDirs or inside one, or inside
// a directory the view makes itself. (A path under /tmp is fine: it is
// mounted inside the instance's own /tmp.)
func systemDir(p string) bool {
	for _, d := range append(systemDirs, "/proc", "/dev", "/sys") {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// hides is what to hide at a start: Hide and Others, less any path that
// is or holds one of the function's own (it would hide its own code).
func (iso *Isolation) hides() []string {
	all := iso.Hide
	if iso.Others != nil {
		all = append(append([]string(nil), all...), iso.Others()...)
	}
	own := iso.ownPaths()
	var out []string
	for _, h := range all {
		keep := filepath.IsAbs(h)
		for _, o := range own {
			if o == h || strings.HasPrefix(o, h+"/") {
				keep = false
			}
		}
		if keep {
			out = append(out, filepath.Clean(h))
		}
	}
	return out
}

func (iso *Isolation) tmpMB() int {
	if iso.TmpMB > 0 {
		return iso.TmpMB
	}
	return DefaultTmpMB
}
