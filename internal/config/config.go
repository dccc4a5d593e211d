// Package config reads and validates stoke.yaml: every error names the file, line and key.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"time"

	"github.com/stokehq/stoke/internal/keepalive"
)

// Config is a whole stoke.yaml after defaults are applied and validation passed.
type Config struct {
	// Path is the absolute path of the file the config was read from; relative
	// paths in functions (cwd) are resolved against its directory.
	Path      string
	Listen    string // default 127.0.0.1:8080
	TLS       TLS    // the gateway listener's certificate; none: plain HTTP
	Admin     Admin
	DataDir   string // absolute; default <dir of Path>/.stoke
	Gateway   Gateway
	Billing   Billing
	Region    string // default us-east-1; in ARNs, Lambda's environment and SigV4
	AccountID string // default "000000000000"; in ARNs
	InvokeAPI InvokeAPI
	Sandbox   Sandbox
	// MemoryBudgetMB bounds the memory of every live instance on the node,
	// all functions together (0: no budget): idle instances are evicted to
	// stay under it, lowest Greedy-Dual priority first (docs/keepalive.md).
	MemoryBudgetMB int
	// Cluster is nil for a single node (cluster.go).
	Cluster   *Cluster
	Functions map[string]*Function
	// Warnings are "file:line: message" notes about settings that are valid
	// but probably not what the user meant; the server prints them at start.
	Warnings []string
}

// Admin is the admin API listener (JSON API, metrics, dashboard).
type Admin struct {
	Listen string // default 127.0.0.1:8081
	Token  string // empty: generated into DataDir on first start; else at least MinAdminToken characters
	TLS    TLS
	// InsecureHTTP allows plain HTTP on an address other machines can
	// reach (behind a TLS-terminating proxy).
	InsecureHTTP bool
}

// Gateway holds the limits the front door applies to every request.
type Gateway struct {
	Timeout time.Duration // default 30s
	// QueueSize bounds the requests waiting for an instance of one function
	// once max_instances are busy; beyond it requests get 429. Default 100.
	QueueSize int
	// MaxBodyBytes bounds request bodies; beyond it requests get 413. Default 6 MB (Lambda's).
	MaxBodyBytes int64
	// TrustedProxies are the client addresses whose X-Forwarded-* and
	// Forwarded fields are kept (extended) rather than replaced; default
	// none.
	TrustedProxies []netip.Prefix
}

// InvokeAPI configures the Lambda Invoke API on the gateway listener.
type InvokeAPI struct {
	Auth        string // "sigv4" (default) or "none"
	Credentials []Credential
}

// Credential is one access key the Invoke API accepts.
type Credential struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"-"`
}

// Billing says how invocations are rounded up and priced: `stoke cost` and
// the cost metrics use it. The defaults are Lambda's x86 prices in us-east-1.
type Billing struct {
	Granularity      time.Duration // default 1ms
	PricePerGBSecond float64       // duration price, default 0.0000166667
	PricePerRequest  float64       // default 0.0000002
	// BillInit bills a cold start's init time at the duration price, as
	// Lambda does for on-demand functions since 2025-08-01. Default true.
	BillInit bool
	// KeepWarmPricePerGBSecond prices keep_warm instances for every second
	// they exist, like provisioned concurrency. Default 0.0000041667.
	KeepWarmPricePerGBSecond float64
}

// Function is one function's settings.
type Function struct {
	Name    string
	Runtime string   // "http", "lambda" or "python-wsgi"
	Build   string   // shell command run once per deploy in Cwd; may be empty
	Command []string // argv; Parse makes Command[0] absolute (against Cwd) if it is relative and contains a slash
	Cwd     string   // absolute; default: dir of the config file
	Env     map[string]string
	// SecretEnv names the Env variables whose value came from a ${VAR}
	// reference; they are redacted wherever Stoke stores or shows env.
	SecretEnv    map[string]bool `json:"-"`
	Memory       int             // MB, 128..10240, default 128
	Timeout      time.Duration   // per invocation, default 3s (Lambda's), max 900s
	Concurrency  int             // in-flight requests per instance, default 1
	MaxInstances int             // default 10
	KeepWarm     int             // default 0
	// KeepAlive is the keep-alive policy of idle instances above KeepWarm:
	// keep_alive, or idle_timeout as fixed:<d>; default adaptive.
	KeepAlive   keepalive.Spec
	InitTimeout time.Duration // default 10s (Lambda's init limit)
	Routes      []string
	Readiness   Readiness
	// EventFormat is the API Gateway payload version HTTP routes to a lambda
	// function produce: "2.0" (HTTP API, default) or "1.0" (REST API).
	EventFormat string
	// InitBoost runs an instance without its CPU quota until it is ready
	// (default true); the quota applies from its first invocation on.
	InitBoost bool
	// Python is the python-wsgi settings; zero for other runtimes.
	Python Python
	// User is the user key as written ("" when the function gets a uid
	// allocated from sandbox.uids); UID and GID are what it names (0 then).
	User     string
	UID, GID int
	// Writable are absolute paths the function may write besides /tmp.
	Writable []string
	// EphemeralStorage is the size of an instance's /tmp in MB (default 512).
	EphemeralStorage int
	// Network is "default" (the host's) or "none" (loopback only).
	Network string
	// Cache is the response cache in front of the function; nil for none.
	Cache *Cache
	// MaxRetryAttempts (0–2, default 2) and MaxEventAge (60s–6h, default
	// 6h) are Lambda's EventInvokeConfig for Event invocations; like it,
	// not part of a version (not in the Fingerprint).
	MaxRetryAttempts int
	MaxEventAge      time.Duration
	// Line is where the function is defined in the file, for messages.
	Line int

	// buildText is Build as written, its ${VAR} references unexpanded
	// (ShownBuild), and buildSecrets the values they expanded to
	// (RedactBuildOutput); both empty when it has none.
	buildText    string
	buildSecrets []string
}

// Python configures a python-wsgi function.
type Python struct {
	Handler        string // "module:callable", e.g. mysite.wsgi:application
	DjangoSettings string // e.g. mysite.settings; used when Handler is empty
	Interpreter    string // the python key; default "python3"
	// Snapshot forks instances from a template that imported the app and
	// served one warm-up request (default true); false starts each instance
	// as its own process.
	Snapshot bool
}

// Readiness says how Stoke knows an http instance is ready to serve.
type Readiness struct {
	Protocol  string // "http" (default) or "tcp"
	Path      string // default "/"
	StatusMin int    // default 100
	StatusMax int    // default 499
	// Host is the Host header of python-wsgi's warm-up request; empty
	// means the shim's default (Django: an ALLOWED_HOSTS entry).
	Host string
}

// Load reads and parses the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Fingerprint is a stable hash of everything that defines a version of the
// function (all fields but Name and Line), so a deploy can tell whether a
// function changed. Nil and empty slices/maps hash the same.
func (f *Function) Fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "runtime=%q\nbuild=%q\ncommand=%q\ncwd=%q\n", f.Runtime, f.Build, f.Command, f.Cwd)
	keys := make([]string, 0, len(f.Env))
	for k := range f.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "env %q=%q\n", k, f.Env[k])
	}
	fmt.Fprintf(h, "memory=%d\ntimeout=%d\nconcurrency=%d\nmax_instances=%d\nkeep_warm=%d\n",
		f.Memory, f.Timeout, f.Concurrency, f.MaxInstances, f.KeepWarm)
	if f.KeepAlive.Kind == keepalive.KindFixed { // as before keep_alive, so such versions keep their fingerprint
		fmt.Fprintf(h, "idle_timeout=%d\n", f.KeepAlive.Fixed)
	} else {
		fmt.Fprintf(h, "keep_alive=%s\n", f.KeepAlive)
	}
	fmt.Fprintf(h, "init_timeout=%d\nroutes=%q\n", f.InitTimeout, f.Routes)
	r := f.Readiness
	fmt.Fprintf(h, "readiness=%q %q %d %d %q\n", r.Protocol, r.Path, r.StatusMin, r.StatusMax, r.Host)
	fmt.Fprintf(h, "event_format=%q\ninit_boost=%t\npython=%q %q %q %t\n", f.EventFormat, f.InitBoost, f.Python.Handler, f.Python.DjangoSettings, f.Python.Interpreter, f.Python.Snapshot)
	fmt.Fprintf(h, "user=%q %d %d\nwritable=%q\nephemeral_storage=%d\nnetwork=%q\n", f.User, f.UID, f.GID, f.Writable, f.EphemeralStorage, f.Network)
	h.Write([]byte(f.Cache.fingerprint()))
	return hex.EncodeToString(h.Sum(nil))[:16]
}
