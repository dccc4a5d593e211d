package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultBilling is Lambda's pricing (x86, us-east-1, first tier) at 1 ms
// granularity, with init billed as since 2025-08-01.
var DefaultBilling = Billing{
	Granularity:              time.Millisecond,
	PricePerGBSecond:         0.0000166667,
	PricePerRequest:          0.0000002,
	BillInit:                 true,
	KeepWarmPricePerGBSecond: 0.0000041667,
}

// Parse parses and validates a config file's contents. path is used in
// messages and to resolve relative paths; it need not exist. On any problem
// Parse returns a nil *Config and an Errors listing every problem found.
func Parse(path string, data []byte) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config path %s: %w", path, err)
	}
	p := &parser{file: path, dir: filepath.Dir(abs), lookup: os.LookupEnv}
	cfg := &Config{
		Path:      abs,
		Listen:    "127.0.0.1:8080",
		Admin:     Admin{Listen: "127.0.0.1:8081"},
		DataDir:   filepath.Join(p.dir, ".stoke"),
		Gateway:   Gateway{Timeout: 30 * time.Second, QueueSize: 100, MaxBodyBytes: 6 << 20},
		Billing:   DefaultBilling,
		Region:    "us-east-1",
		AccountID: "000000000000",
		InvokeAPI: InvokeAPI{Auth: "sigv4"},
		Functions: map[string]*Function{},
	}
	root := p.decode(data)
	if root != nil {
		p.present = walk(p, root, "", topKeys, cfg)
	}
	p.crossChecks(cfg)
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
		return nil, p.errs
	}
	cfg.Warnings = p.warns
	return cfg, nil
}

type parser struct {
	file    string // as the user gave it, so messages read like their command line
	dir     string // absolute directory of the file
	lookup  func(string) (string, bool)
	errs    Errors
	warns   []string
	present map[string]*yaml.Node // top-level keys set in the file
	fns     []*fnState            // in file order
}

// fnState is a function being parsed plus where its keys were, for checks
// that span keys or functions.
type fnState struct {
	fn      *Function
	key     string // functions.<name>
	node    *yaml.Node
	present map[string]*yaml.Node
	routes  []routeRef
}

type routeRef struct {
	pattern string
	line    int
	key     string
}

type pair struct {
	key, val *yaml.Node
	name     string
}

// setter applies one key's value to dst; key is the full dotted path.
type setter[T any] func(p *parser, key string, v *yaml.Node, dst T)

var (
	fnNameRe  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	yamlErrRe = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)
	bareNumRe = regexp.MustCompile(`^[+-]?[0-9.]+$`)
)

// runtimes lists the accepted function runtimes; later ones are added here.
var runtimes = []string{"http", "lambda", "python-wsgi"}

// The key tables: one per level. Adding a key is adding an entry (and a
// line in docs/configuration.md); unknown keys are errors listing these.
var topKeys = map[string]setter[*Config]{
	"listen":   func(p *parser, k string, v *yaml.Node, c *Config) { p.hostPort(v, k, &c.Listen) },
	"data_dir": func(p *parser, k string, v *yaml.Node, c *Config) { p.path(v, k, &c.DataDir) },
	"admin":    func(p *parser, k string, v *yaml.Node, c *Config) { walk(p, v, k, adminKeys, &c.Admin) },
	"gateway":  func(p *parser, k string, v *yaml.Node, c *Config) { walk(p, v, k, gatewayKeys, &c.Gateway) },
	"billing":  func(p *parser, k string, v *yaml.Node, c *Config) { walk(p, v, k, billingKeys, &c.Billing) },
	"functions": func(p *parser, k string, v *yaml.Node, c *Config) {
		p.functions(v, k, c)
	},
	"region": func(p *parser, k string, v *yaml.Node, c *Config) {
		var s string
		if p.str(v, k, &s) {
			if !ValidRegion(s) {
				p.errf(v, k, "%q is not a region name; allowed: names like us-east-1, eu-west-2", s)
				return
			}
			c.Region = s
		}
	},
	"account_id": func(p *parser, k string, v *yaml.Node, c *Config) {
		var s string
		if p.str(v, k, &s) {
			if !accountRe.MatchString(s) {
				p.errf(v, k, "%q is not an account id; allowed: 12 digits, quoted, like \"000000000000\"", s)
				return
			}
			c.AccountID = s
		}
	},
	"invoke_api": func(p *parser, k string, v *yaml.Node, c *Config) { walk(p, v, k, invokeAPIKeys, &c.InvokeAPI) },
}

var (
	accountRe = regexp.MustCompile(`^[0-9]{12}$`)
)

var invokeAPIKeys = map[string]setter[*InvokeAPI]{
	"auth": func(p *parser, k string, v *yaml.Node, a *InvokeAPI) {
		var s string
		if p.str(v, k, &s) {
			if s != "sigv4" && s != "none" {
				p.errf(v, k, "%q is not an auth mode; allowed: sigv4, none", s)
				return
			}
			a.Auth = s
		}
	},
	"credentials": func(p *parser, k string, v *yaml.Node, a *InvokeAPI) {
		v = resolve(v)
		if v.Kind != yaml.SequenceNode {
			p.errf(v, k, "%s; allowed: a list of {access_key_id, secret_access_key}", describe(v))
			return
		}
		for i, item := range v.Content {
			var c Credential
			walk(p, item, fmt.Sprintf("%s[%d]", k, i), credentialKeys, &c)
			if c.AccessKeyID == "" || c.SecretAccessKey == "" {
				p.errf(item, fmt.Sprintf("%s[%d]", k, i), "needs both access_key_id and secret_access_key")
				continue
			}
			a.Credentials = append(a.Credentials, c)
		}
	},
}

var credentialKeys = map[string]setter[*Credential]{
	"access_key_id":     func(p *parser, k string, v *yaml.Node, c *Credential) { p.str(v, k, &c.AccessKeyID) },
	"secret_access_key": func(p *parser, k string, v *yaml.Node, c *Credential) { p.str(v, k, &c.SecretAccessKey) },
}

var adminKeys = map[string]setter[*Admin]{
	"listen": func(p *parser, k string, v *yaml.Node, a *Admin) { p.hostPort(v, k, &a.Listen) },
	"token":  func(p *parser, k string, v *yaml.Node, a *Admin) { p.str(v, k, &a.Token) },
}

var gatewayKeys = map[string]setter[*Gateway]{
	"timeout": func(p *parser, k string, v *yaml.Node, g *Gateway) {
		p.duration(v, k, 1, 0, "more than 0s", &g.Timeout)
	},
	"queue_size": func(p *parser, k string, v *yaml.Node, g *Gateway) {
		var n int64
		if p.integer(v, k, 0, 100000, "", &n) {
			g.QueueSize = int(n)
		}
	},
	"max_body": func(p *parser, k string, v *yaml.Node, g *Gateway) {
		p.integer(v, k, 1, 1<<30, " (bytes)", &g.MaxBodyBytes)
	},
}

var billingKeys = map[string]setter[*Billing]{
	"granularity": func(p *parser, k string, v *yaml.Node, b *Billing) {
		p.duration(v, k, time.Millisecond, time.Hour, "1ms to 1h", &b.Granularity)
	},
	"price_per_gb_second":           func(p *parser, k string, v *yaml.Node, b *Billing) { p.price(v, k, &b.PricePerGBSecond) },
	"price_per_request":             func(p *parser, k string, v *yaml.Node, b *Billing) { p.price(v, k, &b.PricePerRequest) },
	"keep_warm_price_per_gb_second": func(p *parser, k string, v *yaml.Node, b *Billing) { p.price(v, k, &b.KeepWarmPricePerGBSecond) },
	"bill_init":                     func(p *parser, k string, v *yaml.Node, b *Billing) { p.boolean(v, k, &b.BillInit) },
}

var functionKeys = map[string]setter[*fnState]{
	"runtime": func(p *parser, k string, v *yaml.Node, s *fnState) {
		var rt string
		if !p.str(v, k, &rt) {
			return
		}
		for _, r := range runtimes {
			if rt == r {
				s.fn.Runtime = rt
				return
			}
		}
		p.errf(v, k, "%q is not a supported runtime; allowed: %s", rt, strings.Join(runtimes, ", "))
	},
	"build":   func(p *parser, k string, v *yaml.Node, s *fnState) { p.str(v, k, &s.fn.Build) },
	"command": func(p *parser, k string, v *yaml.Node, s *fnState) { p.command(v, k, s) },
	"cwd":     func(p *parser, k string, v *yaml.Node, s *fnState) { p.path(v, k, &s.fn.Cwd) },
	"env":     func(p *parser, k string, v *yaml.Node, s *fnState) { p.env(v, k, s.fn.Env) },
	"memory": func(p *parser, k string, v *yaml.Node, s *fnState) {
		p.intField(v, k, 128, 10240, " (MB)", &s.fn.Memory)
	},
	"timeout": func(p *parser, k string, v *yaml.Node, s *fnState) {
		p.duration(v, k, 1, 900*time.Second, "more than 0s, at most 15m (900s)", &s.fn.Timeout)
	},
	"concurrency": func(p *parser, k string, v *yaml.Node, s *fnState) {
		p.intField(v, k, 1, 1000, "", &s.fn.Concurrency)
	},
	"max_instances": func(p *parser, k string, v *yaml.Node, s *fnState) {
		p.intField(v, k, 1, 10000, "", &s.fn.MaxInstances)
	},
	"keep_warm": func(p *parser, k string, v *yaml.Node, s *fnState) {
		p.intField(v, k, 0, 10000, " (and at most max_instances)", &s.fn.KeepWarm)
	},
	"idle_timeout": func(p *parser, k string, v *yaml.Node, s *fnState) {
		p.duration(v, k, 1, 0, "more than 0s", &s.fn.IdleTimeout)
	},
	"init_timeout": func(p *parser, k string, v *yaml.Node, s *fnState) {
		p.duration(v, k, 1, 0, "more than 0s", &s.fn.InitTimeout)
	},
	"routes": func(p *parser, k string, v *yaml.Node, s *fnState) { p.routes(v, k, s) },
	"event_format": func(p *parser, k string, v *yaml.Node, s *fnState) {
		var f string
		if !p.scalarValue(v, k, &f) {
			return
		}
		if f != "1.0" && f != "2.0" {
			p.errf(v, k, "%q is not an API Gateway payload version; allowed: \"1.0\" (REST API), \"2.0\" (HTTP API)", f)
			return
		}
		s.fn.EventFormat = f
	},
	"readiness":  func(p *parser, k string, v *yaml.Node, s *fnState) { p.readiness(v, k, &s.fn.Readiness) },
	"init_boost": func(p *parser, k string, v *yaml.Node, s *fnState) { p.boolean(v, k, &s.fn.InitBoost) },
	"handler": func(p *parser, k string, v *yaml.Node, s *fnState) {
		var h string
		if !p.str(v, k, &h) {
			return
		}
		mod, fn, ok := strings.Cut(h, ":")
		if !ok || !ValidPythonName(mod) || !ValidPythonName(fn) {
			p.errf(v, k, "%q is not module:callable; allowed: e.g. mysite.wsgi:application or app:app", h)
			return
		}
		s.fn.Python.Handler = h
	},
	"django_settings": func(p *parser, k string, v *yaml.Node, s *fnState) {
		var m string
		if !p.str(v, k, &m) {
			return
		}
		if !ValidPythonName(m) {
			p.errf(v, k, "%q is not a Python module path; allowed: e.g. mysite.settings", m)
			return
		}
		s.fn.Python.DjangoSettings = m
	},
	"python": func(p *parser, k string, v *yaml.Node, s *fnState) {
		var py string
		if p.str(v, k, &py) {
			if strings.TrimSpace(py) == "" {
				p.errf(v, k, "empty; allowed: an interpreter name or path, e.g. python3 or venv/bin/python")
				return
			}
			s.fn.Python.Interpreter = py
		}
	},
	"snapshot": func(p *parser, k string, v *yaml.Node, s *fnState) { p.boolean(v, k, &s.fn.Python.Snapshot) },
}

// pythonOnly are the keys that mean something for runtime python-wsgi only.
var pythonOnly = []string{"handler", "django_settings", "python", "snapshot"}

var readinessKeys = map[string]setter[*Readiness]{
	"path": func(p *parser, k string, v *yaml.Node, r *Readiness) {
		var s string
		if !p.str(v, k, &s) {
			return
		}
		if !strings.HasPrefix(s, "/") {
			p.errf(v, k, "%q does not start with /; allowed: a URL path like /healthz", s)
			return
		}
		r.Path = s
	},
	"status": func(p *parser, k string, v *yaml.Node, r *Readiness) { p.statusRange(v, k, r) },
	"protocol": func(p *parser, k string, v *yaml.Node, r *Readiness) {
		var s string
		if !p.str(v, k, &s) {
			return
		}
		if s != "http" && s != "tcp" {
			p.errf(v, k, "%q is not a readiness protocol; allowed: http, tcp", s)
			return
		}
		r.Protocol = s
	},
}

// decode parses the YAML into a node tree; nil means an empty file.
func (p *parser) decode(data []byte) (root *yaml.Node) {
	defer func() {
		// yaml.v3 reports errors by panicking internally; should one escape
		// on hostile input, it is still just a bad file.
		if r := recover(); r != nil {
			p.errf(nil, "", "YAML parser failed: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			p.syntaxErr(data, err)
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			p.syntaxErr(data, err)
		} else {
			p.errf(&extra, "", "a second YAML document; allowed: one document per file")
		}
		return nil
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

// syntaxErr reports a YAML error at the line where the text goes wrong.
// yaml.v3 reports the line where the enclosing block began, or none at all
// on the first line, so the line is found by parsing growing prefixes of
// the file: the first prefix failing with the same problem ends at it.
func (p *parser) syntaxErr(data []byte, err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlErrRe.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	// yaml.v3's line is at or before the problem, so the search starts
	// there; it is bounded because each attempt parses the prefix again.
	const maxBytes, maxTries = 32 << 10, 50
	if len(data) <= maxBytes {
		lines := bytes.SplitAfter(data, []byte("\n"))
		from := max(line-1, 1)
		for i := from; i <= len(lines) && i < from+maxTries; i++ {
			prefix := bytes.Join(lines[:i], nil)
			if perr := decodeAll(prefix); perr != nil && strings.HasSuffix(perr.Error(), msg) {
				line = i
				break
			}
		}
	}
	if line == 0 {
		line = 1
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: "YAML syntax error: " + msg})
}

// decodeAll parses every document in data, returning the first error.
func decodeAll(data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func (p *parser) errf(n *yaml.Node, key, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) warnf(line int, format string, args ...any) {
	p.warns = append(p.warns, fmt.Sprintf("%s:%d: ", p.file, line)+fmt.Sprintf(format, args...))
}

// walk applies the keys of mapping n to dst using table, reporting unknown
// keys. A key set to null keeps its default. It returns the keys present.
func walk[T any](p *parser, n *yaml.Node, path string, table map[string]setter[T], dst T) map[string]*yaml.Node {
	present := map[string]*yaml.Node{}
	for _, pr := range p.pairs(n, path) {
		key := join(path, pr.name)
		set, ok := table[pr.name]
		if !ok {
			p.errf(pr.key, key, "unknown key%s; allowed: %s", suggest(pr.name, table), allowed(table))
			continue
		}
		present[pr.name] = pr.val
		if !isNull(pr.val) {
			set(p, key, pr.val, dst)
		}
	}
	return present
}

// pairs returns the entries of mapping n in file order, with YAML merge
// keys (<<) applied; null counts as an empty mapping.
func (p *parser) pairs(n *yaml.Node, path string) []pair {
	r := resolve(n)
	if isNull(r) {
		return nil
	}
	if r.Kind != yaml.MappingNode {
		p.errf(n, path, "expected a mapping, got %s", describe(r))
		return nil
	}
	seen := map[string]int{}
	out := p.mapping(r, path, seen, true, nil)
	return out
}

// mapping collects r's entries not already in seen. explicit entries are
// the mapping's own (duplicates are errors); merged ones only fill gaps.
// visited guards against merge cycles and repeated expansion.
func (p *parser) mapping(r *yaml.Node, path string, seen map[string]int, explicit bool, visited map[*yaml.Node]bool) []pair {
	var out []pair
	var merges []*yaml.Node
	for i := 0; i+1 < len(r.Content); i += 2 {
		k, v := r.Content[i], r.Content[i+1]
		kr := resolve(k)
		if kr.Kind != yaml.ScalarNode {
			p.errf(k, path, "a key must be a string, got %s", describe(kr))
			continue
		}
		if kr.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if line, dup := seen[kr.Value]; dup {
			if explicit {
				p.errf(k, join(path, kr.Value), "duplicate key; first set at line %d", line)
			}
			continue
		}
		seen[kr.Value] = k.Line
		out = append(out, pair{k, v, kr.Value})
	}
	if visited == nil {
		visited = map[*yaml.Node]bool{r: true}
	}
	for _, m := range merges {
		mr := resolve(m)
		srcs := []*yaml.Node{m}
		if mr.Kind == yaml.SequenceNode {
			srcs = mr.Content
		}
		for _, src := range srcs {
			sr := resolve(src)
			if sr.Kind != yaml.MappingNode {
				p.errf(src, path, "<< merges %s; allowed: a mapping or a list of mappings", describe(sr))
				continue
			}
			if visited[sr] {
				continue
			}
			visited[sr] = true
			out = append(out, p.mapping(sr, path, seen, false, visited)...)
		}
	}
	return out
}

func (p *parser) functions(v *yaml.Node, key string, c *Config) {
	for _, pr := range p.pairs(v, key) {
		fkey := join(key, pr.name)
		if !fnNameRe.MatchString(pr.name) {
			p.errf(pr.key, fkey, "invalid function name %q; allowed: 1 to 64 letters, digits, - and _", pr.name)
			continue
		}
		s := &fnState{key: fkey, node: pr.key, fn: &Function{
			Name:         pr.name,
			Cwd:          p.dir,
			Env:          map[string]string{},
			Memory:       128,
			Timeout:      3 * time.Second,
			Concurrency:  1,
			MaxInstances: 10,
			IdleTimeout:  10 * time.Minute,
			InitTimeout:  10 * time.Second,
			Readiness:    Readiness{Protocol: "http", Path: "/", StatusMin: 100, StatusMax: 499},
			InitBoost:    true,
			Python:       Python{Interpreter: "python3", Snapshot: true},
			Line:         pr.key.Line,
		}}
		s.present = walk(p, pr.val, fkey, functionKeys, s)
		p.finishFunction(s)
		c.Functions[pr.name] = s.fn
		p.fns = append(p.fns, s)
	}
}

// finishFunction checks what needs more than one key of a function.
func (p *parser) finishFunction(s *fnState) {
	f := s.fn
	if s.present["runtime"] == nil {
		p.errf(s.node, s.key+".runtime", "required; allowed: %s", strings.Join(runtimes, ", "))
	}
	if (f.Runtime == "http" || f.Runtime == "lambda") && len(f.Command) == 0 && s.present["command"] == nil {
		p.errf(s.node, s.key+".command", "required for runtime %s; e.g. command: [./bin/hello]", f.Runtime)
	}
	if f.Runtime == "python-wsgi" {
		if s.present["command"] != nil {
			p.errf(s.present["command"], s.key+".command", "not used with runtime python-wsgi (Stoke runs the app with its own WSGI server); allowed: remove it and set handler or django_settings")
		}
		switch {
		case f.Python.Handler == "" && f.Python.DjangoSettings == "" && s.present["handler"] == nil && s.present["django_settings"] == nil:
			p.errf(s.node, s.key+".handler", "runtime python-wsgi needs handler (module:callable, e.g. app:app) or django_settings (e.g. mysite.settings)")
		case s.present["handler"] != nil && s.present["django_settings"] != nil:
			p.errf(s.present["django_settings"], s.key+".django_settings", "set either handler or django_settings, not both; allowed: django_settings alone serves django.core.wsgi's application")
		}
		if f.Concurrency != 1 {
			p.errf(s.present["concurrency"], s.key+".concurrency", "%d: a python-wsgi instance serves one request at a time, as on Lambda; allowed: 1 (scale out with max_instances)", f.Concurrency)
		}
		if s.present["readiness"] != nil && f.Readiness.Protocol == "tcp" {
			p.errf(s.present["readiness"], s.key+".readiness.protocol", "tcp does not apply to python-wsgi (the warm-up is a WSGI request); allowed: http")
		}
	} else {
		f.Python = Python{}
		for _, key := range pythonOnly {
			if at := s.present[key]; at != nil {
				p.errf(at, s.key+"."+key, "only used with runtime python-wsgi; allowed: remove it, or runtime: python-wsgi")
			}
		}
	}
	if f.Runtime == "lambda" && f.EventFormat == "" {
		f.EventFormat = "2.0"
	}
	if f.Runtime != "lambda" && s.present["event_format"] != nil {
		p.errf(s.present["event_format"], s.key+".event_format", "only used with runtime lambda; allowed: remove it, or runtime: lambda")
	}
	if f.KeepWarm > f.MaxInstances {
		at := s.present["keep_warm"]
		p.errf(at, s.key+".keep_warm", "%d is more than max_instances %d; allowed: 0 to max_instances", f.KeepWarm, f.MaxInstances)
	}
	at := s.present["cwd"]
	if at == nil {
		at = s.node
	}
	if st, err := os.Stat(f.Cwd); err != nil {
		p.errf(at, s.key+".cwd", "directory %s does not exist; allowed: an existing directory, absolute or relative to %s", f.Cwd, p.dir)
	} else if !st.IsDir() {
		p.errf(at, s.key+".cwd", "%s is not a directory; allowed: an existing directory", f.Cwd)
	}
	// A relative program path with a slash means "relative to cwd", as a
	// shell in cwd would read it; resolve it once here for every runtime.
	if len(f.Command) > 0 && strings.Contains(f.Command[0], "/") && !filepath.IsAbs(f.Command[0]) {
		f.Command[0] = filepath.Join(f.Cwd, f.Command[0])
	}
	if py := f.Python.Interpreter; strings.Contains(py, "/") && !filepath.IsAbs(py) {
		f.Python.Interpreter = filepath.Join(f.Cwd, py) // venv/bin/python
	}
}

// crossChecks runs checks that span sections, once every key is known.
func (p *parser) crossChecks(c *Config) {
	if c.Listen == c.Admin.Listen && !strings.HasSuffix(c.Listen, ":0") {
		at := p.present["admin"]
		p.errf(at, "admin.listen", "%s is also the gateway listen address; allowed: a different host:port", c.Admin.Listen)
	}
	if c.InvokeAPI.Auth == "sigv4" && len(c.InvokeAPI.Credentials) == 0 && p.present["invoke_api"] != nil {
		p.errf(p.present["invoke_api"], "invoke_api.credentials", "auth sigv4 needs at least one credential; allowed: a list of {access_key_id, secret_access_key}, or auth: none")
	}
	for _, s := range p.fns {
		if s.fn.Timeout > c.Gateway.Timeout {
			line := s.node.Line
			if n := s.present["timeout"]; n != nil {
				line = n.Line
			}
			p.warnf(line, "%s.timeout %s exceeds gateway.timeout %s; HTTP requests will be cut at %s",
				s.key, FormatDuration(s.fn.Timeout), FormatDuration(c.Gateway.Timeout), FormatDuration(c.Gateway.Timeout))
		}
	}
	// Every route must lead to exactly one function, so no path may match
	// routes of two functions; within a function, only exact repeats are
	// mistakes.
	for i, s := range p.fns {
		for a, ra := range s.routes {
			for _, rb := range s.routes[:a] {
				if ra.pattern == rb.pattern {
					p.errs = append(p.errs, &Error{File: p.file, Line: ra.line, Key: ra.key,
						Msg: fmt.Sprintf("duplicate route %q; already listed at line %d", ra.pattern, rb.line)})
				}
			}
			for _, t := range p.fns[:i] {
				for _, rb := range t.routes {
					if !Overlap(ra.pattern, rb.pattern) {
						continue
					}
					var msg string
					if ra.pattern == rb.pattern {
						msg = fmt.Sprintf("duplicate route %q; function %s already has it at line %d; a path can go to only one function",
							ra.pattern, t.fn.Name, rb.line)
					} else {
						msg = fmt.Sprintf("route %q of function %s overlaps route %q of function %s at line %d (both match %s); a path can go to only one function",
							ra.pattern, s.fn.Name, rb.pattern, t.fn.Name, rb.line, witness(ra.pattern, rb.pattern))
					}
					p.errs = append(p.errs, &Error{File: p.file, Line: ra.line, Key: ra.key, Msg: msg})
				}
			}
		}
	}
}

// witness returns a path both overlapping patterns match, for messages.
func witness(a, b string) string {
	pa, wa := strings.CutSuffix(a, "*")
	pb, wb := strings.CutSuffix(b, "*")
	switch {
	case !wa:
		return a
	case !wb:
		return b
	case len(pa) >= len(pb):
		return pa
	default:
		return pb
	}
}

// scalar returns the env-expanded text of a scalar node; want and allow
// describe the expected value for the message when n is not a scalar.
func (p *parser) scalar(n *yaml.Node, key, want, allow string) (string, bool) {
	r := resolve(n)
	if r.Kind != yaml.ScalarNode {
		msg := fmt.Sprintf("expected %s, got %s", want, describe(r))
		if allow != "" {
			msg += "; " + allow
		}
		p.errf(n, key, "%s", msg)
		return "", false
	}
	return p.expand(n, key, r.Value)
}

func (p *parser) str(n *yaml.Node, key string, dst *string) bool {
	s, ok := p.scalar(n, key, "a string", "")
	if ok {
		*dst = s
	}
	return ok
}

func (p *parser) integer(n *yaml.Node, key string, lo, hi int64, unit string, dst *int64) bool {
	allow := fmt.Sprintf("allowed: %d to %d%s", lo, hi, unit)
	s, ok := p.scalar(n, key, "an integer", allow)
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		p.errf(n, key, "%q is not an integer; %s", s, allow)
		return false
	}
	if v < lo || v > hi {
		p.errf(n, key, "%d is out of range; %s", v, allow)
		return false
	}
	*dst = v
	return true
}

func (p *parser) intField(n *yaml.Node, key string, lo, hi int64, unit string, dst *int) {
	var v int64
	if p.integer(n, key, lo, hi, unit, &v) {
		*dst = int(v)
	}
}

// price parses a price in dollars: a non-negative decimal number. 0 is
// allowed (to leave a charge out); a leading $ is not, so YAML's and the
// user's idea of the value agree.
func (p *parser) price(n *yaml.Node, key string, dst *float64) {
	const allow = "allowed: a decimal number of dollars ≥ 0, like 0.0000166667 or 1.66667e-5"
	s, ok := p.scalar(n, key, "a number", allow)
	if !ok {
		return
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		p.errf(n, key, "%q is not a number; %s", s, allow)
		return
	}
	if v < 0 {
		p.errf(n, key, "%s is negative; %s", s, allow)
		return
	}
	*dst = v
}

// boolean parses true or false (YAML 1.2's spelling only: yes/no/on/off are
// errors rather than strings that silently mean something).
func (p *parser) boolean(n *yaml.Node, key string, dst *bool) {
	const allow = "allowed: true, false"
	s, ok := p.scalar(n, key, "a bool", allow)
	if !ok {
		return
	}
	switch strings.TrimSpace(s) {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		p.errf(n, key, "%q is not a bool; %s", s, allow)
	}
}

// duration parses a Go duration in [lo, hi] (hi 0: no upper bound).
func (p *parser) duration(n *yaml.Node, key string, lo, hi time.Duration, allowText string, dst *time.Duration) {
	allow := "allowed: " + allowText
	s, ok := p.scalar(n, key, "a duration like 10s", allow)
	if !ok {
		return
	}
	s = strings.TrimSpace(s)
	if bareNumRe.MatchString(s) {
		p.errf(n, key, "%s has no unit; add one, e.g. %ss or %sms (units: ms, s, m, h); %s", s, s, s, allow)
		return
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.errf(n, key, "%q is not a duration; allowed: Go durations like 500ms, 10s, 1m30s", s)
		return
	}
	if d < lo || (hi > 0 && d > hi) {
		p.errf(n, key, "%s is out of range; %s", s, allow)
		return
	}
	*dst = d
}

func (p *parser) hostPort(n *yaml.Node, key string, dst *string) {
	const allow = "allowed: host:port like 127.0.0.1:8080, or :8080 for all interfaces"
	s, ok := p.scalar(n, key, "a host:port string", allow)
	if !ok {
		return
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		p.errf(n, key, "%q is not host:port; %s", s, allow)
		return
	}
	if v, err := strconv.Atoi(port); err != nil || v < 0 || v > 65535 {
		p.errf(n, key, "port %q is not a number from 0 to 65535; %s", port, allow)
		return
	}
	*dst = s
}

// path reads a filesystem path, made absolute against the config's dir.
func (p *parser) path(n *yaml.Node, key string, dst *string) {
	var s string
	if !p.str(n, key, &s) {
		return
	}
	if s == "" {
		p.errf(n, key, "empty path; allowed: a path, absolute or relative to %s", p.dir)
		return
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(p.dir, s)
	}
	*dst = filepath.Clean(s)
}

func (p *parser) command(n *yaml.Node, key string, s *fnState) {
	const allow = "allowed: a list like [./bin/hello, --flag] or a string split on spaces"
	r := resolve(n)
	var argv []string
	switch r.Kind {
	case yaml.ScalarNode:
		str, ok := p.expand(n, key, r.Value)
		if !ok {
			return
		}
		argv = strings.Fields(str)
	case yaml.SequenceNode:
		for i, e := range r.Content {
			arg, ok := p.scalar(e, fmt.Sprintf("%s[%d]", key, i), "a string", allow)
			if !ok {
				return
			}
			argv = append(argv, arg)
		}
	default:
		p.errf(n, key, "expected a list of strings, got %s; %s", describe(r), allow)
		return
	}
	if len(argv) == 0 || argv[0] == "" {
		p.errf(n, key, "empty command; %s", allow)
		return
	}
	s.fn.Command = argv
}

func (p *parser) env(n *yaml.Node, key string, env map[string]string) {
	for _, pr := range p.pairs(n, key) {
		k := join(key, pr.name)
		switch {
		case !ValidEnvName(pr.name):
			p.errf(pr.key, k, "invalid variable name; allowed: letters, digits and _, not starting with a digit")
			continue
		case ReservedEnv(pr.name):
			p.errf(pr.key, k, "reserved: Lambda sets this variable itself; allowed: any other name")
			continue
		}
		if isNull(pr.val) {
			env[pr.name] = ""
			continue
		}
		var v string
		if p.scalarValue(pr.val, k, &v) {
			env[pr.name] = v
		}
	}
}

// scalarValue stringifies a scalar of any type (numbers, bools) as written.
func (p *parser) scalarValue(n *yaml.Node, key string, dst *string) bool {
	s, ok := p.scalar(n, key, "a string, number or bool", "")
	if ok {
		*dst = s
	}
	return ok
}

func (p *parser) routes(n *yaml.Node, key string, s *fnState) {
	r := resolve(n)
	items := []*yaml.Node{n}
	if r.Kind == yaml.SequenceNode {
		items = r.Content
	}
	for i, e := range items {
		k := fmt.Sprintf("%s[%d]", key, i)
		if r.Kind != yaml.SequenceNode {
			k = key
		}
		pat, ok := p.scalar(e, k, "a route like /hello or /hello/*", "")
		if !ok {
			continue
		}
		if why := checkRoute(pat); why != "" {
			p.errf(e, k, "%s", why)
			continue
		}
		s.fn.Routes = append(s.fn.Routes, pat)
		s.routes = append(s.routes, routeRef{pattern: pat, line: e.Line, key: k})
	}
}

func (p *parser) readiness(n *yaml.Node, key string, r *Readiness) {
	const allow = "allowed: tcp, http, or a mapping with path, status, protocol"
	rn := resolve(n)
	switch rn.Kind {
	case yaml.ScalarNode:
		var s string
		if !p.str(n, key, &s) {
			return
		}
		if s != "tcp" && s != "http" {
			p.errf(n, key, "%q is not a readiness check; %s", s, allow)
			return
		}
		r.Protocol = s
	case yaml.MappingNode:
		present := walk(p, n, key, readinessKeys, r)
		if r.Protocol == "tcp" {
			for _, name := range []string{"path", "status"} {
				if v := present[name]; v != nil {
					p.errf(v, join(key, name), "only used with protocol http; allowed: remove it, or protocol: http")
				}
			}
		}
	default:
		p.errf(n, key, "expected a string or a mapping, got %s; %s", describe(rn), allow)
	}
}

func (p *parser) statusRange(n *yaml.Node, key string, r *Readiness) {
	const allow = `allowed: a status code or a range like "200-299", codes 100 to 599`
	s, ok := p.scalar(n, key, "a status range", allow)
	if !ok {
		return
	}
	loS, hiS, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if !isRange {
		hiS = loS
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(loS))
	hi, err2 := strconv.Atoi(strings.TrimSpace(hiS))
	if err1 != nil || err2 != nil || lo < 100 || hi > 599 || lo > hi {
		p.errf(n, key, "%q is not a valid status range; %s", s, allow)
		return
	}
	r.StatusMin, r.StatusMax = lo, hi
}

// expand replaces ${NAME} with the environment variable NAME and $$ with $;
// any other $ is kept, so shell text like $HOME passes through.
func (p *parser) expand(n *yaml.Node, key, s string) (string, bool) {
	if !strings.Contains(s, "$") {
		return s, true
	}
	var b strings.Builder
	ok := true
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				p.errf(n, key, "unterminated ${ in %q; allowed: ${NAME} for an environment variable, $$ for a literal $", s)
				return "", false
			}
			name := s[i+2 : i+2+end]
			i += 2 + end
			if !envNameRe.MatchString(name) {
				p.errf(n, key, "${%s} is not a valid variable reference; allowed: ${NAME} with letters, digits and _, $$ for a literal $", name)
				ok = false
				continue
			}
			v, set := p.lookup(name)
			if !set {
				p.errf(n, key, "environment variable %s is not set (referenced as ${%s}); set it, or write $${%s} for a literal", name, name, name)
				ok = false
				continue
			}
			b.WriteString(v)
		default:
			b.WriteByte('$')
		}
	}
	return b.String(), ok
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	r := resolve(n)
	return r.Kind == yaml.ScalarNode && r.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "an unresolved alias"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func allowed[T any](table map[string]setter[T]) string {
	names := make([]string, 0, len(table))
	for k := range table {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// suggest names the closest allowed key when the typo is small.
func suggest[T any](name string, table map[string]setter[T]) string {
	best, bestD := "", 3
	for k := range table {
		if d := editDistance(name, k); d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	if best == "" || len(name) < 3 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// FormatDuration prints a duration the way stoke.yaml writes it: 15m, not
// 15m0s; 24h, not 24h0m0s.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
