package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/stokehq/stoke/internal/keepalive"
	"github.com/stokehq/stoke/internal/lambdaspec"
)

// The function rules: a function's defaults, the keys that need more than
// one scalar (command, env, routes, readiness), and the checks across one
// function's keys.

func (p *parser) functions(v *yaml.Node, key string, c *Config) {
	for _, pr := range p.pairs(v, key) {
		fkey := join(key, pr.name)
		if !lambdaspec.ValidFunctionName(pr.name) {
			p.errf(pr.key, fkey, "invalid function name %q; allowed: 1 to 64 letters, digits, - and _", pr.name)
			continue
		}
		s := &fnState{key: fkey, node: pr.key, fn: &Function{
			Name:             pr.name,
			Cwd:              p.dir,
			Env:              map[string]string{},
			Memory:           lambdaspec.DefaultMemoryMB,
			Timeout:          lambdaspec.DefaultTimeout,
			Concurrency:      1,
			MaxInstances:     10,
			KeepAlive:        keepalive.DefaultSpec,
			InitTimeout:      lambdaspec.MaxInit,
			Readiness:        Readiness{Protocol: "http", Path: "/", StatusMin: 100, StatusMax: 499},
			InitBoost:        true,
			Python:           Python{Interpreter: "python3", Snapshot: true},
			Network:          "default",
			Line:             pr.key.Line,
			EphemeralStorage: lambdaspec.DefaultEphemeralStorageMB,
			MaxRetryAttempts: lambdaspec.MaxRetryAttempts,
			MaxEventAge:      lambdaspec.MaxEventAge,
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
		if f.Readiness.Host != "" {
			p.errf(s.present["readiness"], s.key+".readiness.host", "only used with runtime python-wsgi (the Host of its warm-up request); allowed: remove it")
		}
		for _, key := range pythonOnly {
			if at := s.present[key]; at != nil {
				p.errf(at, s.key+"."+key, "only used with runtime python-wsgi; allowed: remove it, or runtime: python-wsgi")
			}
		}
	}
	if f.Runtime == "lambda" && f.EventFormat == "" {
		f.EventFormat = "2.0"
	}
	if f.Runtime == "lambda" && f.Concurrency != 1 {
		p.errf(s.present["concurrency"], s.key+".concurrency", "%d: a Lambda bootstrap takes one event at a time (GET /next); allowed: 1 (scale out with max_instances)", f.Concurrency)
	}
	if f.Runtime != "lambda" && s.present["event_format"] != nil {
		p.errf(s.present["event_format"], s.key+".event_format", "only used with runtime lambda; allowed: remove it, or runtime: lambda")
	}
	if a, b := s.present["keep_alive"], s.present["idle_timeout"]; a != nil && b != nil {
		p.errf(b, s.key+".idle_timeout", "set either keep_alive or idle_timeout, not both; allowed: idle_timeout: 10m alone is keep_alive: fixed:10m")
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
	p.finishSandbox(s)
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

func (p *parser) env(n *yaml.Node, key string, f *Function) {
	env := f.Env
	for _, pr := range p.pairs(n, key) {
		k := join(key, pr.name)
		switch {
		case !lambdaspec.ValidEnvName(pr.name):
			p.errf(pr.key, k, "invalid variable name; allowed: letters, digits and _, not starting with a digit")
			continue
		case lambdaspec.ReservedEnv(pr.name):
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
			// A value taken from Stoke's environment is treated as a
			// secret: it is never stored or shown (secrets.go).
			if strings.Contains(resolve(pr.val).Value, "${") {
				if f.SecretEnv == nil {
					f.SecretEnv = map[string]bool{}
				}
				f.SecretEnv[pr.name] = true
			}
		}
	}
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
	const allow = "allowed: tcp, http, or a mapping with path, status, protocol, host"
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
			for _, name := range []string{"path", "status", "host"} {
				if v := present[name]; v != nil {
					p.errf(v, join(key, name), "only used with protocol http; allowed: remove it, or protocol: http")
				}
			}
		}
	default:
		p.errf(n, key, "expected a string or a mapping, got %s; %s", describe(rn), allow)
	}
}
