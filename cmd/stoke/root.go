package main

import (
	"errors"
	"fmt"
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

Start here, from the repository root (make build puts stoke in bin/):
  stoke check -f examples/stoke.yaml                # the config, without serving it
  stoke serve -f examples/stoke.yaml                # run the example functions
  curl -i localhost:8080/echo/hi                    # echo scales from zero: X-Stoke-Cold: true
  stoke ls -f examples/stoke.yaml                   # functions and their instances
  stoke invocations echo -f examples/stoke.yaml --cold    # which requests were cold
  stoke logs hello -f examples/stoke.yaml --follow  # the function's log, live
  stoke cost -f examples/stoke.yaml                 # what it would cost on Lambda

-f names the config file on every command (default ./stoke.yaml). Commands
other than serve, check and import talk to a running Stoke's admin API: they
read its address (admin.listen) and token (admin.token, or the file
admin-token in data_dir) from that config, or take --admin and --token (or
STOKE_ADMIN and STOKE_TOKEN).`,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&g.file, "file", "f", "stoke.yaml", "the config file")
	pf.StringVar(&g.admin, "admin", os.Getenv("STOKE_ADMIN"), "admin API address (default: admin.listen from the config file)")
	pf.StringVar(&g.token, "token", os.Getenv("STOKE_TOKEN"), "admin API token (default: admin.token or data_dir/admin-token)")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log debug detail")
	for _, c := range []*cobra.Command{serveCmd(g), checkCmd(g), deployCmd(g), lsCmd(g), invokeCmd(g), invocationsCmd(g),
		logsCmd(g), costCmd(g), traceCmd(g), tuneCmd(g), cacheCmd(g), eventsCmd(g), importCmd(), simulateCmd(g)} {
		root.AddCommand(c)
	}
	return root
}

// legacyLogsFollow rewrites `stoke logs NAME -f` (follow, before -f meant
// the file everywhere) to --follow, with a line saying so: -f followed by
// nothing, by another flag, or by a word that names no file is the old
// follow flag; -f with a file after it is the file.
func legacyLogsFollow(args []string, warn func(string)) []string {
	if len(args) == 0 || args[0] != "logs" {
		return args
	}
	out := append([]string(nil), args...)
	for i, a := range out {
		if a != "-f" {
			continue
		}
		next := ""
		if i+1 < len(out) {
			next = out[i+1]
		}
		if next != "" && !strings.HasPrefix(next, "-") {
			if _, err := os.Stat(next); err == nil || strings.HasSuffix(next, ".yaml") || strings.HasSuffix(next, ".yml") {
				continue // a file: the new meaning
			}
		}
		out[i] = "--follow"
		warn("stoke: -f on logs now names the config file, as on every other command; following as before, since no file came after it. Use --follow.")
	}
	return out
}

// client returns an admin API client, finding the address and token in the
// flags, the environment or the config file, and saying where each came
// from, so a refusal can name what to fix.
func (g *globals) client() (*client, error) {
	addr, token := g.admin, g.token
	addrFrom, tokenFrom := "--admin", "--token"
	var adminTLS config.TLS
	if addr == "" || token == "" {
		abs, _ := filepath.Abs(g.file)
		if _, err := os.Stat(g.file); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no config file %s (looked for %s): commands other than serve read the admin API's address and token from the config the server runs with; name it with -f (from the repository root: -f examples/stoke.yaml), or give --admin and --token (STOKE_ADMIN, STOKE_TOKEN)", g.file, abs)
		}
		var a, tk, tokFile string
		if cfg, err := config.Load(g.file); err != nil {
			// A config with errors (say, one about to be deployed) still
			// usually says where the admin API is.
			a, tk, tokFile = lenientAdmin(g.file)
		} else {
			a, tk, tokFile = cfg.Admin.Listen, cfg.Admin.Token, filepath.Join(cfg.DataDir, "admin-token")
			adminTLS = cfg.Admin.TLS
		}
		if addr == "" {
			addr, addrFrom = a, "admin.listen in "+g.file
			if addr == "" {
				addr, addrFrom = "127.0.0.1:8081", "the default; "+g.file+" sets no admin.listen"
			}
		}
		if token == "" {
			token, tokenFrom = tk, "admin.token in "+g.file
			if token == "" {
				b, err := os.ReadFile(tokFile)
				if err != nil {
					return nil, fmt.Errorf("no admin token: %s sets no admin.token and %s cannot be read (%v); is `stoke serve -f %s` running (it writes that file on start)? Or give --token", g.file, tokFile, err, g.file)
				}
				token, tokenFrom = strings.TrimSpace(string(b)), tokFile
			}
		}
	}
	hc, err := adminHTTPClient(adminTLS)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(addr, "://") {
		if adminTLS.On() {
			addr = "https://" + addr
		} else {
			addr = "http://" + addr
		}
	}
	return &client{base: strings.TrimRight(addr, "/"), token: token, addrFrom: addrFrom, tokenFrom: tokenFrom, http: hc}, nil
}

// lenientAdmin reads admin.listen, admin.token and where the token file is
// from a config file that does not validate.
func lenientAdmin(file string) (addr, token, tokenFile string) {
	var c struct {
		Admin struct {
			Listen string `yaml:"listen"`
			Token  string `yaml:"token"`
		} `yaml:"admin"`
		DataDir string `yaml:"data_dir"`
	}
	if b, err := os.ReadFile(file); err == nil {
		_ = yaml.Unmarshal(b, &c)
	}
	dd := c.DataDir
	if dd == "" {
		dd = ".stoke"
	}
	if !filepath.IsAbs(dd) {
		dd = filepath.Join(filepath.Dir(file), dd)
	}
	return c.Admin.Listen, c.Admin.Token, filepath.Join(dd, "admin-token")
}
