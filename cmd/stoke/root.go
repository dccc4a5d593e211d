package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/stokehq/stoke/internal/config"
)

// globals are the flags every command shares.
type globals struct {
	file    string
	admin   string
	token   string
	verbose bool
}

func (g *globals) level() slog.Level {
	if g.verbose {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

func rootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "stoke",
		Short: "Stoke runs HTTP apps as serverless functions, with AWS Lambda's model and fast, visible cold starts",
		Long: `Stoke runs HTTP apps as serverless functions on your own machine, with AWS
Lambda's model: a memory size per function with CPU in proportion (1,769 MB = one
CPU), one request per instance, scale out on demand, scale to zero, and every
invocation reported the way Lambda reports it (START/END/REPORT, Init Duration
on cold starts).

Start here:
  stoke serve -f examples/stoke.yaml     # run the example functions
  curl localhost:8080/hello              # the first request is a cold start
  stoke ls                               # functions and their instances
  stoke invocations hello --cold         # which requests were cold, and why
  stoke logs hello -f                    # the function's log, live
  stoke cost                             # what it would cost on Lambda

Commands other than serve talk to a running Stoke's admin API; they find its
address and token in the config file (-f), or take --admin and --token
(or STOKE_ADMIN and STOKE_TOKEN).`,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.file, "file", "stoke.yaml", "the config file (-f on every command but logs, where -f follows)")
	pf.StringVar(&g.admin, "admin", os.Getenv("STOKE_ADMIN"), "admin API address (default: admin.listen from the config file)")
	pf.StringVar(&g.token, "token", os.Getenv("STOKE_TOKEN"), "admin API token (default: admin.token or data_dir/admin-token)")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log debug detail")
	for _, c := range []*cobra.Command{serveCmd(g), deployCmd(g), lsCmd(g), invokeCmd(g), invocationsCmd(g), costCmd(g), traceCmd(g), tuneCmd(g)} {
		// A local -f shadows the persistent --file with the same variable,
		// leaving -f free for `logs -f` (follow), as in tail and kubectl.
		c.Flags().StringVarP(&g.file, "file", "f", "stoke.yaml", "the config file")
		root.AddCommand(c)
	}
	root.AddCommand(logsCmd(g))
	root.AddCommand(importCmd())
	return root
}

// client returns an admin API client, finding the address and token in the
// flags, the environment or the config file.
func (g *globals) client() (*client, error) {
	addr, token := g.admin, g.token
	if addr == "" || token == "" {
		if cfg, err := config.Load(g.file); err != nil {
			// A config with errors (say, one about to be deployed) still
			// usually says where the admin API is.
			addr, token = lenientAdmin(g.file, addr, token)
		} else {
			if addr == "" {
				addr = cfg.Admin.Listen
			}
			if token == "" {
				token = cfg.Admin.Token
			}
			if token == "" {
				if b, err := os.ReadFile(filepath.Join(cfg.DataDir, "admin-token")); err == nil {
					token = strings.TrimSpace(string(b))
				}
			}
		}
	}
	if addr == "" {
		addr = "127.0.0.1:8081"
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return &client{base: strings.TrimRight(addr, "/"), token: token}, nil
}

// lenientAdmin reads admin.listen, admin.token and data_dir from a config
// file that does not validate.
func lenientAdmin(file, addr, token string) (string, string) {
	var c struct {
		Admin struct {
			Listen string `yaml:"listen"`
			Token  string `yaml:"token"`
		} `yaml:"admin"`
		DataDir string `yaml:"data_dir"`
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return addr, token
	}
	_ = yaml.Unmarshal(b, &c)
	if addr == "" {
		addr = c.Admin.Listen
	}
	if token == "" {
		token = c.Admin.Token
	}
	if token == "" {
		dd := c.DataDir
		if dd == "" {
			dd = ".stoke"
		}
		if !filepath.IsAbs(dd) {
			dd = filepath.Join(filepath.Dir(file), dd)
		}
		if b, err := os.ReadFile(filepath.Join(dd, "admin-token")); err == nil {
			token = strings.TrimSpace(string(b))
		}
	}
	return addr, token
}
