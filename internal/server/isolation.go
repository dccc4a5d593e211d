package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/sandbox"
)

// newSandbox starts the sandbox: isolating functions when Stoke runs as
// root and sandbox.isolation is on. Anything less still serves, and says
// loudly what is not enforced.
func newSandbox(cfg *config.Config, log *slog.Logger, out io.Writer) (*sandbox.Manager, error) {
	var why string
	switch {
	case !cfg.Sandbox.Isolation:
		why = "sandbox.isolation is false"
	case os.Geteuid() != 0:
		why = "Stoke is not running as root"
	default:
		m, err := sandbox.NewWithOptions(log, sandbox.Options{Isolate: true})
		if err == nil {
			return m, nil
		}
		why = err.Error()
	}
	const msg = "FUNCTIONS ARE NOT ISOLATED: every function runs as Stoke's own user and sees what Stoke sees (its config, data_dir, other functions, Stoke's processes)"
	log.Warn("sandbox: "+msg, "reason", why)
	fmt.Fprintf(out, "\nWARNING: %s.\n         Reason: %s. See docs/SECURITY.md.\n\n", msg, why)
	return sandbox.New(log)
}

// isolation is what the sandbox needs to run f isolated; nil when the
// sandbox does not isolate. A function without a user gets the uid the
// store allocated it (its gid too).
func (s *Server) isolation(ctx context.Context, cfg *config.Config, f *config.Function) (*sandbox.Isolation, error) {
	if !s.sb.Isolated() {
		return nil, nil
	}
	uid, gid := f.UID, f.GID
	if uid == 0 {
		var err error
		uid, err = s.st.FunctionUID(ctx, f.Name, cfg.Sandbox.UIDMin, cfg.Sandbox.UIDMax, hostUser)
		if err != nil {
			return nil, err
		}
		gid = uid
	}
	return &sandbox.Isolation{
		UID: uid, GID: gid, Code: f.Cwd, Writable: f.Writable,
		Hide:  []string{cfg.DataDir, cfg.Path},
		TmpMB: f.EphemeralStorage, NoNetwork: f.Network == "none",
		// Builds keep their HOME (toolchain caches) here, per function.
		Home:   filepath.Join(cfg.DataDir, "build-home", f.Name),
		Others: func() []string { return s.othersPaths(f.Name) },
	}, nil
}

// setPaths records the directories (cwd, writable paths) of the functions
// in cfg, which every other function's view hides; merge keeps those
// recorded before too (while a deploy is under way). Every call is a
// change of the functions (a deploy begins or ends, the cluster's change
// is followed), so the sandbox's prepared stubs go too: their views
// were built from the functions and trees of before.
func (s *Server) setPaths(cfg *config.Config, merge bool) {
	if s.sb != nil {
		s.sb.DiscardPrepared()
	}
	s.spares.Discard() // the Runtime API listeners made ahead, likewise
	s.pathsMu.Lock()
	defer s.pathsMu.Unlock()
	if !merge || s.paths == nil {
		s.paths = map[string][]string{}
	}
	for name, f := range cfg.Functions {
		s.paths[name] = append(append([]string{f.Cwd}, f.Writable...), filepath.Join(cfg.DataDir, "build-home", name))
	}
}

// othersPaths are the directories of every function but name.
func (s *Server) othersPaths(name string) []string {
	s.pathsMu.Lock()
	defer s.pathsMu.Unlock()
	var out []string
	for n, ps := range s.paths {
		if n != name {
			out = append(out, ps...)
		}
	}
	return out
}

// hostUser reports whether uid or gid belongs to a user or group of the
// host, which an allocated uid must not share.
func hostUser(uid int) bool {
	s := strconv.Itoa(uid)
	_, uerr := user.LookupId(s)
	_, gerr := user.LookupGroupId(s)
	return uerr == nil || gerr == nil
}

// makeWritable creates a function's missing writable paths: empty
// directories owned by root, which the function writes through its
// idmapped mount. Stoke never chowns anything.
func makeWritable(f *config.Function) error {
	for _, w := range f.Writable {
		if _, err := os.Stat(w); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(w, 0o755); err != nil {
				return fmt.Errorf("function %s: creating writable path %s: %w", f.Name, w, err)
			}
		}
	}
	return nil
}
