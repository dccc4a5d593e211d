package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/server"
)

func checkCmd(g *globals) *cobra.Command {
	var build, noImports bool
	c := &cobra.Command{
		Use:   "check",
		Short: "Check a stoke.yaml without serving it: keys, routes, commands, python imports (and builds)",
		Long: `Check reads the config file (-f) as serve and deploy would and reports every
problem at once, without starting anything or talking to a running Stoke:

  - every key, value and cross-check (file:line: key: what is wrong, as serve
    would refuse it), and the warnings serve would print;
  - the route table: which path patterns go to which function;
  - each function's command: is it there to run (a missing build output is
    reported as not built yet: --build builds it);
  - with --build, each function's build command, run in its cwd as a deploy
    runs it;
  - each python-wsgi function's app, imported once with its interpreter as an
    instance would import it (the app's module-level code runs, as the user
    running the command): the interpreter's path, version and frameworks, or
    the traceback. --no-imports skips this.

Builds and imports run the function's code as the user running stoke check,
outside the sandbox (a deploy runs both isolated, as the function's user):
check has no function users to run them as (a running Stoke allocates them
in its data_dir) and usually runs without root. Run it as the code's owner,
not as root; as root it warns first.

It exits 0 when nothing is wrong, 1 otherwise.`,
		Example: `  stoke check -f examples/stoke.yaml
  stoke check -f stoke.yaml --build`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			out := cmd.OutOrStdout()
			data, err := os.ReadFile(g.file)
			if err != nil {
				return fileError(g.file, err)
			}
			cfg, err := config.Parse(g.file, data)
			if err != nil {
				return errors.New("the config has errors (serve and deploy would refuse it):\n" + err.Error())
			}
			problems := 0
			for _, w := range cfg.Warnings {
				fmt.Fprintln(out, "warning:", w)
			}
			names := make([]string, 0, len(cfg.Functions))
			for n := range cfg.Functions {
				names = append(names, n)
			}
			sort.Strings(names)
			fmt.Fprintf(out, "%s: %d function(s), listen %s, admin %s\n", g.file, len(names), cfg.Listen, cfg.Admin.Listen)
			if os.Geteuid() == 0 && runsCode(cfg, build, !noImports) {
				fmt.Fprintln(out, rootWarning)
			}
			routeTable(out, cfg, names)
			for _, n := range names {
				f := cfg.Functions[n]
				if build {
					o, err := server.Build(cmd.Context(), f)
					switch {
					case err != nil:
						problems++
						fmt.Fprintf(out, "\nerror: %s: %v\n%s\n", n, err, indent(o, "  "))
						continue
					case strings.TrimSpace(f.Build) != "":
						fmt.Fprintf(out, "%s: built (%s)\n", n, f.ShownBuild())
					}
				}
				if msg, bad := commandReady(f, build); msg != "" {
					if bad {
						problems++
					}
					fmt.Fprintf(out, "%s: %s\n", n, msg)
				}
			}
			if !noImports {
				problems += checkImports(cmd.Context(), cfg, out)
			}
			if problems > 0 {
				return fmt.Errorf("%s: %d problem(s); see above", g.file, problems)
			}
			fmt.Fprintf(out, "\n%s: OK\n", g.file)
			return nil
		},
	}
	c.Flags().BoolVar(&build, "build", false, "run each function's build command, as a deploy does")
	c.Flags().BoolVar(&noImports, "no-imports", false, "do not import python-wsgi apps")
	return c
}

// routeTable prints which patterns go to which function.
func routeTable(w io.Writer, cfg *config.Config, names []string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tFUNCTION\tRUNTIME")
	any := false
	for _, n := range names {
		f := cfg.Functions[n]
		for _, r := range f.Routes {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r, n, f.Runtime)
			any = true
		}
		if len(f.Routes) == 0 {
			fmt.Fprintf(tw, "(none: Invoke API only)\t%s\t%s\n", n, f.Runtime)
			any = true
		}
	}
	if any {
		tw.Flush()
	}
}

// commandReady says whether f's command can be run: its program exists
// (and is executable). A missing program that the build makes is "not built
// yet" unless the build has just run.
func commandReady(f *config.Function, built bool) (string, bool) {
	if f.Runtime == "python-wsgi" || len(f.Command) == 0 {
		return "", false
	}
	prog := f.Command[0]
	var err error
	if strings.Contains(prog, "/") {
		p := prog
		if !filepath.IsAbs(p) {
			p = filepath.Join(f.Cwd, p)
		}
		var st os.FileInfo
		if st, err = os.Stat(p); err == nil && (st.IsDir() || st.Mode()&0o111 == 0) {
			return fmt.Sprintf("error: command %s is not an executable file", p), true
		}
	} else {
		_, err = exec.LookPath(prog)
	}
	switch {
	case err == nil:
		return "", false
	case strings.TrimSpace(f.Build) != "" && !built:
		return fmt.Sprintf("command %s is not built yet; its build makes it on deploy (stoke check --build runs the build now)", prog), false
	}
	return fmt.Sprintf("error: command %s not found (%v); build it, or fix command:", prog, err), true
}

// fileError says which config file was not read, from where, and what to do.
func fileError(file string, err error) error {
	abs, _ := filepath.Abs(file)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no config file %s (looked for %s); name one with -f, e.g. -f examples/stoke.yaml from the repository root", file, abs)
	}
	return fmt.Errorf("reading the config %s: %w", abs, err)
}

// rootWarning is printed when check runs functions' code as root.
const rootWarning = "warning: running as root: the builds and python imports below run as root, outside the sandbox (a deploy runs them isolated, as each function's user); run stoke check as the code's owner"

// runsCode reports whether check will run any function's code: a build
// (with --build) or a python-wsgi import.
func runsCode(cfg *config.Config, build, imports bool) bool {
	for _, f := range cfg.Functions {
		if (build && strings.TrimSpace(f.Build) != "") || (imports && f.Runtime == "python-wsgi") {
			return true
		}
	}
	return false
}
