package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/zappa"
)

// importCmd groups the importers of other tools' settings; each is a
// subcommand, so `stoke import` alone lists what can be imported.
func importCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "import",
		Short: "Turn another tool's project settings into a stoke.yaml",
		Long: `Import writes a stoke.yaml from another deploy tool's settings, so an existing
project runs on Stoke unchanged. It works offline: nothing talks to a running
Stoke or to AWS.`,
		Example: `  stoke import zappa zappa_settings.json --stage dev -o stoke.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	c.AddCommand(importZappaCmd())
	return c
}

func importZappaCmd() *cobra.Command {
	var stage, out, python string
	var force, noCheck bool
	c := &cobra.Command{
		Use:   "zappa [SETTINGS_FILE]",
		Short: "Turn a Zappa project's zappa_settings (.json, .toml, .yml, .yaml) into a stoke.yaml",
		Long: `Import reads SETTINGS_FILE as Zappa reads it (.json through Hjson, so comments
and a missing comma are fine; .toml; .yml/.yaml) and writes a stoke.yaml with
one python-wsgi function for one stage: the stage of --stage, or the only
stage. Without SETTINGS_FILE it takes the file Zappa would take in the current
directory: zappa_settings.json, .toml, .yml, then .yaml. A stage's "extends" is
followed as Zappa does.

The function is named as Zappa names the Lambda function (project_name-stage,
slugified; without project_name, the directory's name cut to 15 characters, as
Zappa does), runs the app of app_function or django_settings from the settings
file's directory, and keeps memory_size, timeout_seconds, keep_warm (true is 1,
false is 0, and a number N keeps N instances warm), lambda_concurrency (as
max_instances), environment_variables, aws_environment_variables (their values
must be strings, as for Zappa), aws_region and touch_path. Zappa's defaults
apply to keys the stage leaves out: 512 MB, 30s, keep_warm true. A stage that
only runs event functions (events, lambda_handler) is refused: it is not a web
app.

Every other key is listed, in the file's header comment and on stderr: a
switch that is off is carried over, Zappa's packaging keys (s3_bucket,
exclude, ...) are not needed, and features Stoke lacks (a VPC, a custom
domain, a keep-warm schedule, ...) say why. Without -o the config goes to
stdout. The result is checked with Stoke's own config parser before anything
is written; then, unless --no-check, the app is imported once with the
interpreter (--python) to show that it imports, naming the interpreter and
the traceback if it does not. See docs/zappa.md.`,
		Example: `  stoke import zappa                                   # ./zappa_settings.json, its only stage, to stdout
  stoke import zappa zappa_settings.json --stage dev -o stoke.yaml
  stoke import zappa ../mysite/zappa_settings.json --stage prod -o stoke.yaml --force
  stoke serve -f stoke.yaml                            # then run it`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			var path string
			if len(args) == 1 {
				path = args[0]
			} else {
				p, err := zappa.Find(".")
				if err != nil {
					return err
				}
				path = p
			}
			o := zappa.Options{Stage: stage, Output: out, Python: python}
			res, err := runImportZappa(path, o, force, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil || noCheck {
				return err
			}
			checkImports(cmd.Context(), res.Config, cmd.ErrOrStderr())
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&stage, "stage", "", "the stage to import (default: the only stage)")
	f.StringVarP(&out, "output", "o", "", "write the config to this file instead of stdout")
	f.BoolVar(&force, "force", false, "overwrite the -o file if it exists")
	f.StringVar(&python, "python", "python3", "the interpreter to run the app with (python: in the config), e.g. venv/bin/python or /usr/bin/python3")
	f.BoolVar(&noCheck, "no-check", false, "do not import the app with the interpreter after writing the config")
	return c
}

func runImportZappa(path string, o zappa.Options, force bool, stdout, stderr io.Writer) (*zappa.Result, error) {
	out := o.Output
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read Zappa settings: %w", err)
	}
	if out != "" {
		// Checked before importing: cwd is written relative to this
		// directory, and the validation of the result needs it to exist.
		if st, err := os.Stat(filepath.Dir(out)); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("-o %s: directory %s does not exist", out, filepath.Dir(out))
		}
		if _, err := os.Stat(out); err == nil && !force {
			return nil, fmt.Errorf("%s already exists; use --force to overwrite it", out)
		}
	}
	res, err := zappa.Import(path, data, o)
	if err != nil {
		return nil, err
	}
	if out == "" {
		if _, err := stdout.Write(res.YAML); err != nil {
			return nil, fmt.Errorf("write config: %w", err)
		}
	} else if err := writeNew(out, res.YAML, force, configMode(res.Config)); err != nil {
		return nil, err
	}
	dest := "stdout"
	if out != "" {
		dest = out
	}
	fmt.Fprintf(stderr, "Imported stage %q of %s (read as %s) as function %s, written to %s.\n", res.Stage, path, res.Format, res.Function, dest)
	for _, s := range []struct {
		title string
		kind  zappa.Kind
	}{
		{"Carried over:", zappa.Honoured},
		{"Check (carried over with a difference):", zappa.Changed},
		{"Not imported (Stoke cannot honour these):", zappa.Unsupported},
		{"Unknown keys (ignored):", zappa.Unknown},
		{"Not needed on Stoke (Zappa's packaging and AWS bookkeeping):", zappa.NotNeeded},
	} {
		notes := res.Select(s.kind)
		if len(notes) == 0 {
			continue
		}
		fmt.Fprintln(stderr, "\n"+s.title)
		for _, n := range notes {
			fmt.Fprintln(stderr, "  "+n.String())
		}
	}
	for i, w := range res.Warnings {
		if i == 0 {
			fmt.Fprintln(stderr, "\nWarnings from the config check:")
		}
		fmt.Fprintln(stderr, "  "+w)
	}
	return res, nil
}

// configMode is 0600 for a config that carries environment variables (a
// Zappa stage's often hold secrets), else 0644.
func configMode(c *config.Config) os.FileMode {
	if c != nil {
		for _, f := range c.Functions {
			if len(f.Env) > 0 {
				return 0o600
			}
		}
	}
	return 0o644
}
