package config

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/stokehq/stoke/internal/keepalive"
	"github.com/stokehq/stoke/internal/lambdaspec"
)

// The key tables: one per level. Adding a key is adding an entry (and a
// line in docs/configuration.md); unknown keys are errors listing these.

// setter applies one key's value to dst; key is the full dotted path.
type setter[T any] func(p *parser, key string, v *yaml.Node, dst T)

// runtimes lists the accepted function runtimes; later ones are added here.
var runtimes = []string{"http", "lambda", "python-wsgi"}

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
		p.checked(v, k, lambdaspec.ValidRegion, "is not a region name; allowed: names like us-east-1, eu-west-2", &c.Region)
	},
	"account_id": func(p *parser, k string, v *yaml.Node, c *Config) {
		p.checked(v, k, lambdaspec.ValidAccountID, `is not an account id; allowed: 12 digits, quoted, like "000000000000"`, &c.AccountID)
	},
	"invoke_api": func(p *parser, k string, v *yaml.Node, c *Config) { walk(p, v, k, invokeAPIKeys, &c.InvokeAPI) },
	"memory_budget": func(p *parser, k string, v *yaml.Node, c *Config) {
		var b int64
		p.byteSize(v, k, lambdaspec.MinMemoryMB<<20, 1<<44, &b)
		c.MemoryBudgetMB = int(b >> 20)
	},
	"sandbox": func(p *parser, k string, v *yaml.Node, c *Config) { walk(p, v, k, sandboxKeys, &c.Sandbox) },
	"tls":     func(p *parser, k string, v *yaml.Node, c *Config) { p.tls(v, k, &c.TLS) },
	"cluster": func(p *parser, k string, v *yaml.Node, c *Config) { p.cluster(v, k, c) },
}

var invokeAPIKeys = map[string]setter[*InvokeAPI]{
	"auth": func(p *parser, k string, v *yaml.Node, a *InvokeAPI) {
		p.oneOf(v, k, "a string", "an auth mode", "sigv4, none", []string{"sigv4", "none"}, &a.Auth)
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
	"token":  func(p *parser, k string, v *yaml.Node, a *Admin) { p.adminToken(v, k, a) },
	"tls":    func(p *parser, k string, v *yaml.Node, a *Admin) { p.tls(v, k, &a.TLS) },
	"insecure_http": func(p *parser, k string, v *yaml.Node, a *Admin) {
		p.boolean(v, k, &a.InsecureHTTP)
	},
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
	"trusted_proxies": func(p *parser, k string, v *yaml.Node, g *Gateway) { p.prefixes(v, k, &g.TrustedProxies) },
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
		p.oneOf(v, k, "a string", "a supported runtime", strings.Join(runtimes, ", "), runtimes, &s.fn.Runtime)
	},
	"build": func(p *parser, k string, v *yaml.Node, s *fnState) {
		p.expanded = nil
		if p.str(v, k, &s.fn.Build) && len(p.expanded) > 0 {
			s.fn.buildText, s.fn.buildSecrets = resolve(v).Value, p.expanded
		}
	},
	"command": func(p *parser, k string, v *yaml.Node, s *fnState) { p.command(v, k, s) },
	"cwd":     func(p *parser, k string, v *yaml.Node, s *fnState) { p.path(v, k, &s.fn.Cwd) },
	"env":     func(p *parser, k string, v *yaml.Node, s *fnState) { p.env(v, k, s.fn) },
	"memory": func(p *parser, k string, v *yaml.Node, s *fnState) {
		p.intField(v, k, lambdaspec.MinMemoryMB, lambdaspec.MaxMemoryMB, " (MB)", &s.fn.Memory)
	},
	"timeout": func(p *parser, k string, v *yaml.Node, s *fnState) {
		p.duration(v, k, 1, lambdaspec.MaxTimeout, maxTimeoutText, &s.fn.Timeout)
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
		// The spelling of keep_alive: fixed:<d> that came first.
		var d time.Duration
		p.duration(v, k, 1, 0, "more than 0s", &d)
		if d > 0 {
			s.fn.KeepAlive = keepalive.Spec{Kind: keepalive.KindFixed, Fixed: d}
		}
	},
	"keep_alive": func(p *parser, k string, v *yaml.Node, s *fnState) {
		const allow = "allowed: fixed:<duration> (e.g. fixed:10m), hybrid, adaptive"
		str, ok := p.scalar(v, k, "a string", allow)
		if !ok {
			return
		}
		spec, err := keepalive.ParseSpec(str)
		if err != nil {
			p.errf(v, k, "%q is not a keep-alive policy; %s", str, allow)
			return
		}
		s.fn.KeepAlive = spec
	},
	"init_timeout": func(p *parser, k string, v *yaml.Node, s *fnState) {
		p.duration(v, k, 1, 0, "more than 0s", &s.fn.InitTimeout)
	},
	"routes": func(p *parser, k string, v *yaml.Node, s *fnState) { p.routes(v, k, s) },
	"event_format": func(p *parser, k string, v *yaml.Node, s *fnState) {
		// Unquoted, 2.0 is a YAML number: any scalar is read as written.
		p.oneOf(v, k, "a string, number or bool", "an API Gateway payload version", `"1.0" (REST API), "2.0" (HTTP API)`,
			[]string{"1.0", "2.0"}, &s.fn.EventFormat)
	},
	"readiness":  func(p *parser, k string, v *yaml.Node, s *fnState) { p.readiness(v, k, &s.fn.Readiness) },
	"init_boost": func(p *parser, k string, v *yaml.Node, s *fnState) { p.boolean(v, k, &s.fn.InitBoost) },
	"handler": func(p *parser, k string, v *yaml.Node, s *fnState) {
		var h string
		if !p.str(v, k, &h) {
			return
		}
		mod, fn, ok := strings.Cut(h, ":")
		if !ok || !ValidModulePath(mod) || !ValidPythonName(fn) {
			p.errf(v, k, "%q is not module:callable; allowed: e.g. mysite.wsgi:application or app:app", h)
			return
		}
		s.fn.Python.Handler = h
	},
	"django_settings": func(p *parser, k string, v *yaml.Node, s *fnState) {
		p.checked(v, k, ValidPythonName, "is not a Python module path; allowed: e.g. mysite.settings", &s.fn.Python.DjangoSettings)
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
	// The function's sandbox (sandbox.go).
	"user":     func(p *parser, k string, v *yaml.Node, s *fnState) { p.user(v, k, s.fn) },
	"writable": func(p *parser, k string, v *yaml.Node, s *fnState) { p.writable(v, k, s.fn) },
	"ephemeral_storage": func(p *parser, k string, v *yaml.Node, s *fnState) {
		p.intField(v, k, lambdaspec.MinEphemeralStorageMB, lambdaspec.MaxEphemeralStorageMB, " (MB, Lambda's range)", &s.fn.EphemeralStorage)
	},
	"network": func(p *parser, k string, v *yaml.Node, s *fnState) {
		p.oneOf(v, k, "a string", "a network mode", "default (the host's network), none (loopback only)", []string{"default", "none"}, &s.fn.Network)
	},
	"cache": func(p *parser, k string, v *yaml.Node, s *fnState) { p.cache(v, k, s) },
	// Event invocations (Lambda's EventInvokeConfig).
	"maximum_retry_attempts": func(p *parser, k string, v *yaml.Node, s *fnState) {
		p.intField(v, k, 0, lambdaspec.MaxRetryAttempts, " (retries of a failed Event invocation, as on Lambda)", &s.fn.MaxRetryAttempts)
	},
	"maximum_event_age": func(p *parser, k string, v *yaml.Node, s *fnState) {
		p.duration(v, k, lambdaspec.MinEventAge, lambdaspec.MaxEventAge, "60s to 6h, as on Lambda", &s.fn.MaxEventAge)
	},
}

// maxTimeoutText is what a function's timeout may be: "more than 0s, at
// most 15m (900s)".
var maxTimeoutText = fmt.Sprintf("more than 0s, at most %s (%ds)", FormatDuration(lambdaspec.MaxTimeout), int(lambdaspec.MaxTimeout.Seconds()))

// pythonOnly are the keys that mean something for runtime python-wsgi only.
var pythonOnly = []string{"handler", "django_settings", "python", "snapshot"}

var readinessKeys = map[string]setter[*Readiness]{
	"path": func(p *parser, k string, v *yaml.Node, r *Readiness) {
		p.checked(v, k, func(s string) bool { return strings.HasPrefix(s, "/") },
			"does not start with /; allowed: a URL path like /healthz", &r.Path)
	},
	"status": func(p *parser, k string, v *yaml.Node, r *Readiness) { p.statusRange(v, k, r) },
	"host": func(p *parser, k string, v *yaml.Node, r *Readiness) {
		p.checked(v, k, validHost, "is not a host; allowed: a host name or address, optionally with :port, like api.example.com", &r.Host)
	},
	"protocol": func(p *parser, k string, v *yaml.Node, r *Readiness) {
		p.oneOf(v, k, "a string", "a readiness protocol", "http, tcp", []string{"http", "tcp"}, &r.Protocol)
	},
}
