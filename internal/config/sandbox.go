package config

import (
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Sandbox is how functions are kept apart from Stoke and each other
// (docs/SECURITY.md).
type Sandbox struct {
	// Isolation runs every function as its own user in its own namespaces
	// (default true; needs root). False runs them as Stoke's user, with a
	// loud warning.
	Isolation bool
	// UIDMin and UIDMax bound the uids allocated to functions that name no
	// user (default 200000-265535); each function keeps its uid (and uses
	// it as its gid) across restarts.
	UIDMin, UIDMax int
}

// DefaultSandbox is the sandbox section's defaults.
var DefaultSandbox = Sandbox{Isolation: true, UIDMin: 200000, UIDMax: 265535}

var sandboxKeys = map[string]setter[*Sandbox]{
	"isolation": func(p *parser, k string, v *yaml.Node, s *Sandbox) { p.boolean(v, k, &s.Isolation) },
	"uids":      func(p *parser, k string, v *yaml.Node, s *Sandbox) { p.uidRange(v, k, s) },
}

func (p *parser) uidRange(n *yaml.Node, key string, s *Sandbox) {
	const allow = `allowed: a range like "200000-265535" of uids above 0, at least 16 wide`
	str, ok := p.scalar(n, key, "a uid range", allow)
	if !ok {
		return
	}
	loS, hiS, _ := strings.Cut(str, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(loS))
	hi, err2 := strconv.Atoi(strings.TrimSpace(hiS))
	if err1 != nil || err2 != nil || lo < 1 || hi > 1<<32-2 || hi-lo < 15 {
		p.errf(n, key, "%q is not a usable uid range; %s", str, allow)
		return
	}
	s.UIDMin, s.UIDMax = lo, hi
}

// user reads `user: NAME | UID[:GID]`: the user the function runs as
// instead of a uid allocated from sandbox.uids. Never root.
func (p *parser) user(n *yaml.Node, key string, f *Function) {
	const allow = "allowed: a user name of this host, or UID or UID:GID, never 0 (root)"
	s, ok := p.scalar(n, key, "a user", allow)
	if !ok {
		return
	}
	s = strings.TrimSpace(s)
	uidS, gidS, hasGID := strings.Cut(s, ":")
	uid, err := strconv.Atoi(uidS)
	if err != nil {
		if hasGID {
			p.errf(n, key, "%q: a name takes no :GID (its group is its own); %s", s, allow)
			return
		}
		u, lerr := user.Lookup(s)
		if lerr != nil {
			p.errf(n, key, "no user %q on this host; %s", s, allow)
			return
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if uid == 0 || gid == 0 {
			p.errf(n, key, "user %q is root (uid %s, gid %s); %s", s, u.Uid, u.Gid, allow)
			return
		}
		f.User, f.UID, f.GID = s, uid, gid
		return
	}
	gid := uid
	if hasGID {
		if gid, err = strconv.Atoi(gidS); err != nil {
			p.errf(n, key, "%q: the GID is not a number; %s", s, allow)
			return
		}
	}
	if uid < 1 || gid < 1 || uid > 1<<32-2 || gid > 1<<32-2 {
		p.errf(n, key, "%q; %s", s, allow)
		return
	}
	f.User, f.UID, f.GID = s, uid, gid
}

// writable reads the paths a function may write, relative to its cwd
// (resolved in finishSandbox, once cwd is known).
func (p *parser) writable(n *yaml.Node, key string, f *Function) {
	const allow = "allowed: a list of paths, relative to cwd or absolute, e.g. [var, /srv/uploads]"
	r := resolve(n)
	if r.Kind != yaml.SequenceNode {
		p.errf(n, key, "%s; %s", describe(r), allow)
		return
	}
	for i, item := range r.Content {
		var s string
		ik := key + "[" + strconv.Itoa(i) + "]"
		if !p.str(item, ik, &s) {
			continue
		}
		if strings.TrimSpace(s) == "" {
			p.errf(item, ik, "empty path; %s", allow)
			continue
		}
		f.Writable = append(f.Writable, s)
	}
}

// finishSandbox resolves the writable paths against cwd and refuses the
// directories every function shares read-only.
func (p *parser) finishSandbox(s *fnState) {
	f := s.fn
	for i, w := range f.Writable {
		if !filepath.IsAbs(w) {
			w = filepath.Join(f.Cwd, w)
		}
		w = filepath.Clean(w)
		f.Writable[i] = w
		if w == "/" || w == "/tmp" || sharedDir(w) {
			p.errf(s.present["writable"], s.key+".writable", "%s is (inside) a directory every function shares read-only or that the sandbox makes itself; allowed: a directory of the function's own", w)
		}
	}
}

// sharedDir mirrors the sandbox's list of shared and made directories.
func sharedDir(p string) bool {
	for _, d := range []string{"/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/dev", "/sys"} {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}
