package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/keepalive"
)

const fullExample = `# every key set
listen: 0.0.0.0:9000
admin:
  listen: 127.0.0.1:9001
  token: ${STOKE_TEST_TOKEN}
data_dir: state
gateway:
  timeout: 45s
  queue_size: 0
  max_body: 1048576
billing: {granularity: 100ms, price_per_gb_second: 0.0000133334,
  price_per_request: 2e-7, bill_init: false, keep_warm_price_per_gb_second: 0}
functions:
  hello:
    runtime: http
    build: go build -o bin/hello ./cmd/hello
    command: [./bin/hello, --port, 8080]
    cwd: app
    env: {GREETING: hi, COUNT: 3, DEBUG: true, EMPTY: , PRICE: "$$5", SECRET: "${STOKE_TEST_TOKEN}"}
    memory: 1769
    timeout: 1m
    concurrency: 4
    max_instances: 50
    keep_warm: 2
    idle_timeout: 5m
    init_timeout: 20s
    routes: [/hello, /hello/*]
    readiness: {path: /healthz, status: "200-299", protocol: http}
    user: "1234:5678"
    writable: [var, /srv/up/]
    ephemeral_storage: 1024
    network: none
    maximum_retry_attempts: 0
    maximum_event_age: 1h
  plain:
    runtime: http
    command: python3 -m http.server
    readiness: tcp
    routes: [/static*]
sandbox: {isolation: false, uids: 300000-300100}
memory_budget: 8GB
`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "stoke.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadFull(t *testing.T) {
	t.Setenv("STOKE_TEST_TOKEN", "s3cret-s3cret-s3cret-s3cret-s3cret")
	path := writeConfig(t, fullExample)
	dir := filepath.Dir(path)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Path:    path,
		Listen:  "0.0.0.0:9000",
		Admin:   Admin{Listen: "127.0.0.1:9001", Token: "s3cret-s3cret-s3cret-s3cret-s3cret"},
		DataDir: filepath.Join(dir, "state"),
		Gateway: Gateway{Timeout: 45 * time.Second, QueueSize: 0, MaxBodyBytes: 1 << 20},
		Billing: Billing{Granularity: 100 * time.Millisecond, PricePerGBSecond: 0.0000133334, PricePerRequest: 2e-7},
		Region:  "us-east-1", AccountID: "000000000000", InvokeAPI: InvokeAPI{Auth: "sigv4"},
		Sandbox:        Sandbox{Isolation: false, UIDMin: 300000, UIDMax: 300100},
		MemoryBudgetMB: 8192,
		Functions: map[string]*Function{
			"hello": {
				Name:    "hello",
				Runtime: "http",
				Build:   "go build -o bin/hello ./cmd/hello",
				Command: []string{filepath.Join(dir, "app/bin/hello"), "--port", "8080"},
				Cwd:     filepath.Join(dir, "app"),
				Env: map[string]string{"GREETING": "hi", "COUNT": "3", "DEBUG": "true", "EMPTY": "",
					"PRICE": "$5", "SECRET": "s3cret-s3cret-s3cret-s3cret-s3cret"},
				SecretEnv:    map[string]bool{"SECRET": true},
				Memory:       1769,
				Timeout:      time.Minute,
				Concurrency:  4,
				MaxInstances: 50,
				KeepWarm:     2,
				KeepAlive:    keepalive.Spec{Kind: keepalive.KindFixed, Fixed: 5 * time.Minute},
				InitTimeout:  20 * time.Second,
				Routes:       []string{"/hello", "/hello/*"},
				Readiness:    Readiness{Protocol: "http", Path: "/healthz", StatusMin: 200, StatusMax: 299},
				InitBoost:    true,
				User:         "1234:5678", UID: 1234, GID: 5678,
				Writable:         []string{filepath.Join(dir, "app/var"), "/srv/up"},
				EphemeralStorage: 1024,
				Network:          "none",
				MaxRetryAttempts: 0,
				MaxEventAge:      time.Hour,
				Line:             14,
			},
			"plain": {
				Name:             "plain",
				Runtime:          "http",
				Command:          []string{"python3", "-m", "http.server"},
				Cwd:              dir,
				Env:              map[string]string{},
				Memory:           128,
				Timeout:          3 * time.Second,
				Concurrency:      1,
				MaxInstances:     10,
				KeepAlive:        keepalive.DefaultSpec,
				InitTimeout:      10 * time.Second,
				Routes:           []string{"/static*"},
				Readiness:        Readiness{Protocol: "tcp", Path: "/", StatusMin: 100, StatusMax: 499},
				InitBoost:        true,
				EphemeralStorage: 512,
				Network:          "default",
				MaxRetryAttempts: 2,
				MaxEventAge:      6 * time.Hour,
				Line:             35,
			},
		},
		Warnings: []string{path + ":21: functions.hello.timeout 1m exceeds gateway.timeout 45s; HTTP requests will be cut at 45s"},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got\n%+v\nwant\n%+v", cfg, want)
		for name, f := range cfg.Functions {
			t.Errorf("%s: got %+v\nwant %+v", name, f, want.Functions[name])
		}
	}
}

func TestSecretsRedacted(t *testing.T) {
	t.Setenv("STOKE_TEST_TOKEN", "s3cret-but-long-enough")
	text := strings.ReplaceAll(fullExample, "token: ${STOKE_TEST_TOKEN}", "token: literal-admin-token-of-32-chars-xx")
	cfg, err := Load(writeConfig(t, text))
	if err != nil {
		t.Fatal(err)
	}
	red := string(RedactText([]byte(text), cfg.Secrets()))
	if strings.Contains(red, "literal-admin-token") || !strings.Contains(red, "token: "+Redacted) {
		t.Errorf("config text not redacted:\n%s", red)
	}
	f := cfg.Functions["hello"].Redacted()
	if f.Env["SECRET"] != Redacted || f.Env["GREETING"] != "hi" || cfg.Functions["hello"].Env["SECRET"] != "s3cret-but-long-enough" {
		t.Errorf("env %v (original %v)", f.Env, cfg.Functions["hello"].Env)
	}
}

func TestDefaults(t *testing.T) {
	for _, text := range []string{"", "# only a comment\n", "functions:\n", "functions: {}\n"} {
		path := writeConfig(t, text)
		cfg, err := Load(path)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		want := &Config{
			Path:    path,
			Listen:  "127.0.0.1:8080",
			Admin:   Admin{Listen: "127.0.0.1:8081"},
			DataDir: filepath.Join(filepath.Dir(path), ".stoke"),
			Gateway: Gateway{Timeout: 30 * time.Second, QueueSize: 100, MaxBodyBytes: 6291456},
			Billing: DefaultBilling,
			Region:  "us-east-1", AccountID: "000000000000", InvokeAPI: InvokeAPI{Auth: "sigv4"},
			Sandbox:   DefaultSandbox,
			Functions: map[string]*Function{},
		}
		if !reflect.DeepEqual(cfg, want) {
			t.Errorf("%q: got %+v, want %+v", text, cfg, want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want a not-exist error", err)
	}
}

// fn wraps function keys into a config with one valid function "hello"
// whose body starts at line 4; extra lines follow at line 4 onwards.
func fn(extra string) string {
	return "functions:\n  hello:\n    runtime: http\n" + extra + "    command: [./bin/hello]\n"
}

func TestErrors(t *testing.T) {
	t.Setenv("STOKE_TEST_SET", "x")
	os.Unsetenv("STOKE_TEST_UNSET")
	tests := []struct {
		name, text string
		want       string // the whole message, or a prefix of it ending in "..."
	}{
		{"unknown top key", "listen: :80\nzone: us-east-1a\n",
			"stoke.yaml:2: zone: unknown key; allowed: account_id, admin, billing, cluster, data_dir, functions, gateway, invoke_api, listen, memory_budget, region, sandbox, tls"},
		{"user root by number", fn("    user: 0\n"), `stoke.yaml:4: functions.hello.user: "0"; allowed: a user name of this host, or UID or UID:GID, never 0 (root)`},
		{"user root group", fn("    user: 1000:0\n"), `stoke.yaml:4: functions.hello.user: "1000:0"; allowed: a user name of this host, or UID or UID:GID, never 0 (root)`},
		{"user root by name", fn("    user: root\n"), `stoke.yaml:4: functions.hello.user: user "root" is root (uid 0, gid 0); allowed: a user name of this host, or UID or UID:GID, never 0 (root)`},
		{"user unknown", fn("    user: no-such-user-here\n"), `stoke.yaml:4: functions.hello.user: no user "no-such-user-here" on this host; allowed: a user name of this host, or UID or UID:GID, never 0 (root)`},
		{"writable system dir", fn("    writable: [/etc/app]\n"), "stoke.yaml:4: functions.hello.writable: /etc/app is (inside) a directory every function shares read-only or that the sandbox makes itself; allowed: a directory of the function's own"},
		{"writable not a list", fn("    writable: var\n"), `stoke.yaml:4: functions.hello.writable: "var"; allowed: a list of paths, relative to cwd or absolute, e.g. [var, /srv/uploads]`},
		{"ephemeral storage small", fn("    ephemeral_storage: 100\n"), "stoke.yaml:4: functions.hello.ephemeral_storage: ..."},
		{"network", fn("    network: host\n"), "stoke.yaml:4: functions.hello.network: ..."},
		{"short admin token", "admin: {token: abc}\n", "stoke.yaml:1: admin.token: 3 characters; allowed: at least 32 (or leave it out: Stoke generates one into data_dir)"},
		{"admin reachable in clear", "admin: {listen: \"0.0.0.0:8081\"}\n", "stoke.yaml:1: admin.listen: 0.0.0.0:8081 is reachable from other machines and admin.tls is not set: ..."},
		{"tls half", "tls: {cert: a.pem}\n", "stoke.yaml:1: tls: needs both cert and key; allowed: {cert: server.crt, key: server.key} (PEM files)"},
		{"tls missing file", "tls: {cert: a.pem, key: b.pem}\n", "stoke.yaml:1: tls: ..."},
		{"uid range", "sandbox: {uids: 0-100}\n", `stoke.yaml:1: sandbox.uids: "0-100" is not a usable uid range; allowed: a range like "200000-265535" of uids above 0, at least 16 wide`},
		{"bad region", "region: Mars\n", `stoke.yaml:1: region: "Mars" is not a region name; allowed: names like us-east-1, eu-west-2`},
		{"bad account", "account_id: 12\n", `stoke.yaml:1: account_id: "12" is not an account id; allowed: 12 digits, quoted, like "000000000000"`},
		{"bad auth", "invoke_api:\n  auth: basic\n", `stoke.yaml:2: invoke_api.auth: "basic" is not an auth mode; allowed: sigv4, none`},
		{"sigv4 without keys", "invoke_api:\n  auth: sigv4\n", `stoke.yaml:2: invoke_api.credentials: auth sigv4 needs at least one credential; allowed: a list of {access_key_id, secret_access_key}, or auth: none`},
		{"half a credential", "invoke_api:\n  credentials:\n    - access_key_id: AKID\n", "stoke.yaml:2: invoke_api.credentials: auth sigv4 needs at least one credential; allowed: a list of {access_key_id, secret_access_key}, or auth: none"},
		{"event_format on http", "functions:\n  hello:\n    runtime: http\n    command: [x]\n    event_format: \"2.0\"\n",
			`stoke.yaml:5: functions.hello.event_format: only used with runtime lambda; allowed: remove it, or runtime: lambda`},
		{"bad event_format", "functions:\n  hello:\n    runtime: lambda\n    command: [x]\n    event_format: \"3.0\"\n",
			`stoke.yaml:5: functions.hello.event_format: "3.0" is not an API Gateway payload version; allowed: "1.0" (REST API), "2.0" (HTTP API)`},
		{"unknown admin key", "admin:\n  tokn: x\n",
			"stoke.yaml:2: admin.tokn: unknown key (did you mean token?); allowed: insecure_http, listen, tls, token"},
		{"unknown gateway key", "gateway:\n  invoke_api: true\n",
			"stoke.yaml:2: gateway.invoke_api: unknown key; allowed: max_body, queue_size, timeout, trusted_proxies"},
		{"unknown billing key", "billing:\n  granularty: 1ms\n",
			"stoke.yaml:2: billing.granularty: unknown key (did you mean granularity?); allowed: bill_init, granularity, keep_warm_price_per_gb_second, price_per_gb_second, price_per_request"},
		{"unknown function key", fn("    memroy: 256\n"),
			"stoke.yaml:4: functions.hello.memroy: unknown key (did you mean memory?); allowed: build, cache, command, concurrency, cwd, django_settings, env, ephemeral_storage, event_format, handler, idle_timeout, init_boost, init_timeout, keep_alive, keep_warm, max_instances, maximum_event_age, maximum_retry_attempts, memory, network, python, readiness, routes, runtime, snapshot, timeout, user, writable"},
		{"python key on http", fn("    handler: app:app\n"),
			"stoke.yaml:4: functions.hello.handler: only used with runtime python-wsgi; allowed: remove it, or runtime: python-wsgi"},
		{"unknown readiness key", fn("    readiness: {path: /, code: 200}\n"),
			"stoke.yaml:4: functions.hello.readiness.code: unknown key; allowed: host, path, protocol, status"},
		{"duplicate key", "listen: :80\nlisten: :81\n",
			"stoke.yaml:2: listen: duplicate key; first set at line 1"},
		{"top not a mapping", "- a\n- b\n", "stoke.yaml:1: expected a mapping, got a list"},
		{"section not a mapping", "gateway: 30s\n", `stoke.yaml:1: gateway: expected a mapping, got "30s"`},
		{"string got list", "admin:\n  token: [a]\n", "stoke.yaml:2: admin.token: expected a string, got a list"},
		{"int got mapping", fn("    memory: {a: 1}\n"),
			"stoke.yaml:4: functions.hello.memory: expected an integer, got a mapping; allowed: 128 to 10240 (MB)"},
		{"int not a number", fn("    memory: 1GB\n"),
			`stoke.yaml:4: functions.hello.memory: "1GB" is not an integer; allowed: 128 to 10240 (MB)`},
		{"duration got list", "gateway:\n  timeout: [1s]\n",
			"stoke.yaml:2: gateway.timeout: expected a duration like 10s, got a list; allowed: more than 0s"},
		{"duplicate function key", fn("    build: make\n") + "    command: [y]\n",
			"stoke.yaml:6: functions.hello.command: duplicate key; first set at line 5"},
		{"command wrong type", "functions:\n  hello:\n    runtime: http\n    command: {a: b}\n",
			"stoke.yaml:4: functions.hello.command: expected a list of strings, got a mapping; allowed: ..."},
		{"command element wrong type", "functions:\n  hello:\n    runtime: http\n    command: [a, [b]]\n",
			"stoke.yaml:4: functions.hello.command[1]: expected a string, got a list; allowed: ..."},
		{"empty command", "functions:\n  hello:\n    runtime: http\n    command: []\n",
			"stoke.yaml:4: functions.hello.command: empty command; allowed: ..."},
		{"env not a mapping", fn("    env: [A=1]\n"), "stoke.yaml:4: functions.hello.env: expected a mapping, got a list"},
		{"env value a list", fn("    env:\n      A: [1]\n"),
			"stoke.yaml:5: functions.hello.env.A: expected a string, number or bool, got a list"},
		{"env bad name", fn("    env:\n      1A: x\n"),
			"stoke.yaml:5: functions.hello.env.1A: invalid variable name; allowed: letters, digits and _, not starting with a digit"},
		{"env reserved", fn("    env:\n      AWS_LAMBDA_FUNCTION_NAME: x\n"),
			"stoke.yaml:5: functions.hello.env.AWS_LAMBDA_FUNCTION_NAME: reserved: ..."},
		{"memory too low", fn("    memory: 64\n"),
			"stoke.yaml:4: functions.hello.memory: 64 is out of range; allowed: 128 to 10240 (MB)"},
		{"memory too high", fn("    memory: 10241\n"),
			"stoke.yaml:4: functions.hello.memory: 10241 is out of range; allowed: 128 to 10240 (MB)"},
		{"concurrency zero", fn("    concurrency: 0\n"),
			"stoke.yaml:4: functions.hello.concurrency: 0 is out of range; allowed: 1 to 1000"},
		{"max_instances zero", fn("    max_instances: 0\n"),
			"stoke.yaml:4: functions.hello.max_instances: 0 is out of range; allowed: 1 to 10000"},
		{"keep_warm above max_instances", fn("    max_instances: 2\n    keep_warm: 3\n"),
			"stoke.yaml:5: functions.hello.keep_warm: 3 is more than max_instances 2; allowed: 0 to max_instances"},
		{"keep_warm negative", fn("    keep_warm: -1\n"),
			"stoke.yaml:4: functions.hello.keep_warm: -1 is out of range; allowed: 0 to 10000 (and at most max_instances)"},
		{"queue_size negative", "gateway:\n  queue_size: -1\n",
			"stoke.yaml:2: gateway.queue_size: -1 is out of range; allowed: 0 to 100000"},
		{"max_body zero", "gateway:\n  max_body: 0\n",
			"stoke.yaml:2: gateway.max_body: 0 is out of range; allowed: 1 to 1073741824 (bytes)"},
		{"duration without unit", fn("    timeout: 10\n"),
			"stoke.yaml:4: functions.hello.timeout: 10 has no unit; add one, e.g. 10s or 10ms (units: ms, s, m, h); allowed: more than 0s, at most 15m (900s)"},
		{"bad duration", fn("    idle_timeout: ten minutes\n"),
			`stoke.yaml:4: functions.hello.idle_timeout: "ten minutes" is not a duration; allowed: Go durations like 500ms, 10s, 1m30s`},
		{"keep_alive unknown", fn("    keep_alive: lru\n"),
			`stoke.yaml:4: functions.hello.keep_alive: "lru" is not a keep-alive policy; allowed: fixed:<duration> (e.g. fixed:10m), hybrid, adaptive`},
		{"keep_alive fixed without duration", fn("    keep_alive: fixed:soon\n"),
			`stoke.yaml:4: functions.hello.keep_alive: "fixed:soon" is not a keep-alive policy; allowed: fixed:<duration> (e.g. fixed:10m), hybrid, adaptive`},
		{"keep_alive and idle_timeout", fn("    keep_alive: hybrid\n    idle_timeout: 5m\n"),
			"stoke.yaml:5: functions.hello.idle_timeout: set either keep_alive or idle_timeout, not both; allowed: idle_timeout: 10m alone is keep_alive: fixed:10m"},
		{"memory_budget too small", "memory_budget: 64MB\n",
			"stoke.yaml:1: memory_budget: 64MB is out of range; allowed: 128MB to 16384GB, as bytes or like 64MB, 512KB, 1GB"},
		{"memory_budget not a size", "memory_budget: lots\n",
			`stoke.yaml:1: memory_budget: "lots" is not a size; allowed: 128MB to 16384GB, as bytes or like 64MB, 512KB, 1GB`},
		{"timeout too long", fn("    timeout: 901s\n"),
			"stoke.yaml:4: functions.hello.timeout: 901s is out of range; allowed: more than 0s, at most 15m (900s)"},
		{"timeout zero", fn("    timeout: 0s\n"),
			"stoke.yaml:4: functions.hello.timeout: 0s is out of range; allowed: more than 0s, at most 15m (900s)"},
		{"granularity too small", "billing:\n  granularity: 500us\n",
			"stoke.yaml:2: billing.granularity: 500us is out of range; allowed: 1ms to 1h"},
		{"negative price", "billing:\n  price_per_gb_second: -1\n",
			"stoke.yaml:2: billing.price_per_gb_second: -1 is negative; allowed: a decimal number of dollars ≥ 0, like 0.0000166667 or 1.66667e-5"},
		{"price with a dollar sign", "billing:\n  price_per_request: $0.20\n",
			"stoke.yaml:2: billing.price_per_request: \"$0.20\" is not a number; allowed: a decimal number of dollars ≥ 0, like 0.0000166667 or 1.66667e-5"},
		{"price not a scalar", "billing:\n  keep_warm_price_per_gb_second: [1]\n",
			"stoke.yaml:2: billing.keep_warm_price_per_gb_second: expected a number, got a list; allowed: a decimal number of dollars ≥ 0, like 0.0000166667 or 1.66667e-5"},
		{"bill_init not a bool", "billing:\n  bill_init: yes\n",
			"stoke.yaml:2: billing.bill_init: \"yes\" is not a bool; allowed: true, false"},
		{"missing runtime", "functions:\n  hello:\n    command: [x]\n",
			"stoke.yaml:2: functions.hello.runtime: required; allowed: http, lambda, python-wsgi"},
		{"null function", "functions:\n  hello:\n", "stoke.yaml:2: functions.hello.runtime: required; allowed: http, lambda, python-wsgi"},
		{"bad runtime", "functions:\n  hello:\n    runtime: python2\n    command: [x]\n",
			`stoke.yaml:3: functions.hello.runtime: "python2" is not a supported runtime; allowed: http, lambda, python-wsgi`},
		{"wsgi without handler", "functions:\n  api:\n    runtime: python-wsgi\n",
			"stoke.yaml:2: functions.api.handler: runtime python-wsgi needs handler (module:callable, e.g. app:app) or django_settings (e.g. mysite.settings)"},
		{"wsgi with command", "functions:\n  api:\n    runtime: python-wsgi\n    handler: app:app\n    command: [x]\n",
			"stoke.yaml:5: functions.api.command: not used with runtime python-wsgi (Stoke runs the app with its own WSGI server); allowed: remove it and set handler or django_settings"},
		{"wsgi bad handler", "functions:\n  api:\n    runtime: python-wsgi\n    handler: app.app\n",
			`stoke.yaml:4: functions.api.handler: "app.app" is not module:callable; allowed: e.g. mysite.wsgi:application or app:app`},
		{"wsgi handler module with a space", "functions:\n  api:\n    runtime: python-wsgi\n    handler: \"my app:app\"\n",
			`stoke.yaml:4: functions.api.handler: "my app:app" is not module:callable; allowed: e.g. mysite.wsgi:application or app:app`},
		{"wsgi handler callable with a hyphen", "functions:\n  api:\n    runtime: python-wsgi\n    handler: sleep-tracker:my-app\n",
			`stoke.yaml:4: functions.api.handler: "sleep-tracker:my-app" is not module:callable; allowed: e.g. mysite.wsgi:application or app:app`},
		{"wsgi both", "functions:\n  api:\n    runtime: python-wsgi\n    handler: a:b\n    django_settings: m.settings\n",
			"stoke.yaml:5: functions.api.django_settings: set either handler or django_settings, not both; allowed: django_settings alone serves django.core.wsgi's application"},
		{"wsgi bad settings", "functions:\n  api:\n    runtime: python-wsgi\n    django_settings: my-site.settings\n",
			`stoke.yaml:4: functions.api.django_settings: "my-site.settings" is not a Python module path; allowed: e.g. mysite.settings`},
		{"route under the Invoke API", fn("    routes: [/2015-03-31/functions/x/invocations]\n"),
			`stoke.yaml:4: functions.hello.routes[0]: "/2015-03-31/functions/x/invocations" is under /2015-03-31/functions/, where the gateway serves Lambda's Invoke API; allowed: any other path`},
		{"wsgi concurrency", "functions:\n  api:\n    runtime: python-wsgi\n    handler: a:b\n    concurrency: 4\n",
			"stoke.yaml:5: functions.api.concurrency: 4: a python-wsgi instance serves one request at a time, as on Lambda; allowed: 1 (scale out with max_instances)"},
		{"retries out of range", fn("    maximum_retry_attempts: 3\n"),
			"stoke.yaml:4: functions.hello.maximum_retry_attempts: 3 is out of range; allowed: 0 to 2 (retries of a failed Event invocation, as on Lambda)"},
		{"event age too short", fn("    maximum_event_age: 30s\n"),
			"stoke.yaml:4: functions.hello.maximum_event_age: 30s is out of range; allowed: 60s to 6h, as on Lambda"},
		{"event age too long", fn("    maximum_event_age: 7h\n"),
			"stoke.yaml:4: functions.hello.maximum_event_age: 7h is out of range; allowed: 60s to 6h, as on Lambda"},
		{"retries negative", fn("    maximum_retry_attempts: -1\n"),
			"stoke.yaml:4: functions.hello.maximum_retry_attempts: -1 is out of range; allowed: 0 to 2 (retries of a failed Event invocation, as on Lambda)"},
		{"lambda concurrency", "functions:\n  l:\n    runtime: lambda\n    command: [x]\n    concurrency: 2\n",
			"stoke.yaml:5: functions.l.concurrency: 2: a Lambda bootstrap takes one event at a time (GET /next); allowed: 1 (scale out with max_instances)"},
		{"wsgi snapshot not bool", "functions:\n  api:\n    runtime: python-wsgi\n    handler: a:b\n    snapshot: maybe\n",
			`stoke.yaml:5: functions.api.snapshot: "maybe" is not a bool; allowed: true, false`},
		{"missing command", "functions:\n  hello:\n    runtime: http\n",
			"stoke.yaml:2: functions.hello.command: required for runtime http; e.g. command: [./bin/hello]"},
		{"bad function name", "functions:\n  hello.world:\n    runtime: http\n    command: [x]\n",
			`stoke.yaml:2: functions.hello.world: invalid function name "hello.world"; allowed: 1 to 64 letters, digits, - and _`},
		{"route without slash", fn("    routes: [hello]\n"),
			`stoke.yaml:4: functions.hello.routes[0]: "hello" does not start with /; allowed: ...`},
		{"route star inside", fn("    routes: [/a, /h*llo]\n"),
			`stoke.yaml:4: functions.hello.routes[1]: "/h*llo" has a * before the end; allowed: ...`},
		{"route with query", fn("    routes: [\"/a?b\"]\n"),
			`stoke.yaml:4: functions.hello.routes[0]: "/a?b" contains a space, ? or #; allowed: ...`},
		{"route not a string", fn("    routes: [{a: b}]\n"),
			"stoke.yaml:4: functions.hello.routes[0]: expected a route like /hello or /hello/*, got a mapping"},
		{"duplicate route in function", fn("    routes:\n      - /a\n      - /a\n"),
			`stoke.yaml:6: functions.hello.routes[1]: duplicate route "/a"; already listed at line 5`},
		{"duplicate route across functions",
			"functions:\n  a:\n    runtime: http\n    command: [x]\n    routes: [/x]\n  b:\n    runtime: http\n    command: [x]\n    routes: [/x]\n",
			`stoke.yaml:9: functions.b.routes[0]: duplicate route "/x"; function a already has it at line 5; a path can go to only one function`},
		{"overlapping routes",
			"functions:\n  a:\n    runtime: http\n    command: [x]\n    routes: [/hello/*]\n  b:\n    runtime: http\n    command: [x]\n    routes: [/hello/world]\n",
			`stoke.yaml:9: functions.b.routes[0]: route "/hello/world" of function b overlaps route "/hello/*" of function a at line 5 (both match /hello/world); a path can go to only one function`},
		{"overlapping prefixes",
			"functions:\n  a:\n    runtime: http\n    command: [x]\n    routes: [/ab]\n  b:\n    runtime: http\n    command: [x]\n    routes: [/a*]\n",
			`stoke.yaml:9: functions.b.routes[0]: route "/a*" of function b overlaps route "/ab" of function a at line 5 (both match /ab); ...`},
		{"missing cwd", fn("    cwd: does-not-exist\n"),
			"stoke.yaml:4: functions.hello.cwd: directory DIR/does-not-exist does not exist; allowed: an existing directory, absolute or relative to DIR"},
		{"cwd is a file", fn("    cwd: stoke.yaml\n"),
			"stoke.yaml:4: functions.hello.cwd: DIR/stoke.yaml is not a directory; allowed: an existing directory"},
		{"unset env reference", fn("    env:\n      SECRET: ${STOKE_TEST_UNSET}\n"),
			"stoke.yaml:5: functions.hello.env.SECRET: environment variable STOKE_TEST_UNSET is not set (referenced as ${STOKE_TEST_UNSET}); set it, or write $${STOKE_TEST_UNSET} for a literal"},
		{"unset env reference in top key", "admin:\n  token: a-${STOKE_TEST_UNSET}\n",
			"stoke.yaml:2: admin.token: environment variable STOKE_TEST_UNSET is not set ..."},
		{"bad env reference", "admin:\n  token: ${A-B}\n",
			"stoke.yaml:2: admin.token: ${A-B} is not a valid variable reference; ..."},
		{"unterminated env reference", "admin:\n  token: ${STOKE_TEST_SET\n",
			`stoke.yaml:2: admin.token: unterminated ${ in "${STOKE_TEST_SET"; ...`},
		{"bad listen", "listen: localhost\n",
			`stoke.yaml:1: listen: "localhost" is not host:port; allowed: host:port like 127.0.0.1:8080, or :8080 for all interfaces`},
		{"bad port", "admin:\n  listen: 127.0.0.1:http\n",
			`stoke.yaml:2: admin.listen: port "http" is not a number from 0 to 65535; ...`},
		{"same listen", "listen: 127.0.0.1:9000\nadmin:\n  listen: 127.0.0.1:9000\n",
			"stoke.yaml:3: admin.listen: 127.0.0.1:9000 is also the gateway listen address; allowed: a different host:port"},
		{"bad readiness string", fn("    readiness: udp\n"),
			`stoke.yaml:4: functions.hello.readiness: "udp" is not a readiness check; allowed: tcp, http, or a mapping with path, status, protocol, host`},
		{"readiness host on an http function", fn("    readiness:\n      host: api.example.com\n"),
			`stoke.yaml:5: functions.hello.readiness.host: only used with runtime python-wsgi (the Host of its warm-up request); allowed: remove it`},
		{"bad readiness host", "functions:\n  api:\n    runtime: python-wsgi\n    handler: app:app\n    readiness: {host: \"a b\"}\n",
			`stoke.yaml:5: functions.api.readiness.host: "a b" is not a host; allowed: a host name or address, optionally with :port, like api.example.com`},
		{"runtime typo: did you mean", "functions:\n  hello:\n    runtime: lamda\n    command: [x]\n",
			`stoke.yaml:3: functions.hello.runtime: "lamda" is not a supported runtime (did you mean lambda?); allowed: http, lambda, python-wsgi`},
		{"enum typo in case: did you mean", fn("    readiness:\n      protocol: HTTP\n"),
			`stoke.yaml:5: functions.hello.readiness.protocol: "HTTP" is not a readiness protocol (did you mean http?); allowed: http, tcp`},
		{"bad readiness status", fn("    readiness: {status: 299-200}\n"),
			`stoke.yaml:4: functions.hello.readiness.status: "299-200" is not a valid status range; allowed: ...`},
		{"bad readiness path", fn("    readiness:\n      path: healthz\n"),
			`stoke.yaml:5: functions.hello.readiness.path: "healthz" does not start with /; allowed: a URL path like /healthz`},
		{"bad readiness protocol", fn("    readiness:\n      protocol: grpc\n"),
			`stoke.yaml:5: functions.hello.readiness.protocol: "grpc" is not a readiness protocol; allowed: http, tcp`},
		{"tcp readiness with path", fn("    readiness:\n      protocol: tcp\n      path: /x\n"),
			"stoke.yaml:6: functions.hello.readiness.path: only used with protocol http; ..."},
		{"yaml syntax error", "listen: :80\nfunctions:\n  a:\n    runtime: http\n   command: x\n",
			"stoke.yaml:5: YAML syntax error: did not find expected key"},
		{"yaml tab", "listen: :80\n\tadmin: {}\n",
			"stoke.yaml:2: YAML syntax error: found a tab character that violates indentation"},
		{"yaml unclosed flow", "gateway: {timeout: 1s\nlisten: :80\n",
			"stoke.yaml:1: YAML syntax error: ..."},
		{"two documents", "listen: :80\n---\nlisten: :81\n",
			"stoke.yaml:2: a second YAML document; allowed: one document per file"},
		{"bad merge", "gateway:\n  <<: [1]\n",
			`stoke.yaml:2: gateway: << merges "1"; allowed: a mapping or a list of mappings`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "stoke.yaml")
			if err := os.WriteFile(path, nil, 0o644); err != nil { // so "cwd: stoke.yaml" names a file
				t.Fatal(err)
			}
			t.Chdir(dir)
			cfg, err := Parse("stoke.yaml", []byte(tt.text))
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("got a config along with the error")
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, want Errors", err)
			}
			want := strings.ReplaceAll(tt.want, "DIR", workDir(t))
			got := err.Error()
			first := strings.SplitN(got, "\n", 2)[0]
			if prefix, ok := strings.CutSuffix(want, "..."); ok {
				if !strings.HasPrefix(first, prefix) {
					t.Errorf("got  %s\nwant %s", got, want)
				}
			} else if first != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

// workDir is the test's directory as Parse resolves it after t.Chdir.
func workDir(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

func TestAllErrorsCollected(t *testing.T) {
	text := "listen: nope\nregion: x\nfunctions:\n  a:\n    runtime: lambdax\n    memory: 1\n    timeout: 5\n"
	_, err := Parse("stoke.yaml", []byte(text))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("got %v", err)
	}
	var lines []int
	for _, e := range es {
		lines = append(lines, e.Line)
	}
	// listen, region, runtime, memory, timeout; no "missing command" as
	// the runtime, which decides whether one is needed, is unknown
	if want := []int{1, 2, 5, 6, 7}; !reflect.DeepEqual(lines, want) {
		t.Errorf("error lines %v, want %v:\n%v", lines, want, err)
	}
	if n := strings.Count(err.Error(), "\n"); n != len(es)-1 {
		t.Errorf("want one error per line, got %d newlines for %d errors", n, len(es))
	}
}

func TestAliasesAndMerge(t *testing.T) {
	text := `base: &base
  runtime: http
  memory: 256
functions:
  a:
    <<: *base
    command: [x]
    memory: 512
  b:
    <<: *base
    command: [y]
`
	// "base" is not a key; a real file would keep anchors under an
	// accepted key, so check the error and then a file without it.
	if _, err := Parse("stoke.yaml", []byte(text)); err == nil || !strings.HasPrefix(err.Error(), "stoke.yaml:1: base: unknown key") {
		t.Fatalf("got %v", err)
	}
	text = `functions:
  a: &base
    runtime: http
    command: [x]
    memory: 256
  b:
    <<: *base
    memory: 512
    routes: [/b]
`
	cfg, err := Parse("stoke.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Functions["a"], cfg.Functions["b"]
	if a.Memory != 256 || b.Memory != 512 || b.Runtime != "http" || b.Command[0] != "x" || len(b.Routes) != 1 {
		t.Errorf("a %+v\nb %+v", a, b)
	}
	// A merge cycle must not hang.
	if _, err := Parse("stoke.yaml", []byte("admin: &a {<<: *a, token: 0123456789abcdef0123456789abcdef}\n")); err != nil {
		t.Errorf("self merge: %v", err)
	}
}

func TestEnvExpansion(t *testing.T) {
	t.Setenv("STOKE_TEST_MEM", "512")
	t.Setenv("STOKE_TEST_EMPTY", "")
	text := fn("    memory: ${STOKE_TEST_MEM}\n    build: echo $HOME $$HOME ${STOKE_TEST_EMPTY}x $\n")
	cfg, err := Parse("stoke.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Functions["hello"]
	if f.Memory != 512 {
		t.Errorf("memory %d, want 512", f.Memory)
	}
	if want := "echo $HOME $HOME x $"; f.Build != want {
		t.Errorf("build %q, want %q", f.Build, want)
	}
}

func TestWarningOnlyWhenExceeding(t *testing.T) {
	cfg, err := Parse("stoke.yaml", []byte("gateway: {timeout: 10s}\n"+fn("    timeout: 10s\n")))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings %v", cfg.Warnings)
	}
	cfg, err = Parse("stoke.yaml", []byte("gateway: {timeout: 2s}\n"+fn("")))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"stoke.yaml:3: functions.hello.timeout 3s exceeds gateway.timeout 2s; HTTP requests will be cut at 2s"}
	if !reflect.DeepEqual(cfg.Warnings, want) {
		t.Errorf("warnings %q, want %q", cfg.Warnings, want)
	}
}

func TestFingerprint(t *testing.T) {
	base := func() *Function {
		return &Function{Name: "a", Runtime: "http", Command: []string{"x"}, Cwd: "/w",
			Env: map[string]string{"A": "1", "B": "2"}, Memory: 128, Timeout: time.Second, Line: 3}
	}
	fp := base().Fingerprint()
	if len(fp) != 16 {
		t.Fatalf("fingerprint %q is not 16 chars", fp)
	}
	same := base()
	same.Name, same.Line = "b", 99
	same.Env = map[string]string{"B": "2", "A": "1"}
	if same.Fingerprint() != fp {
		t.Error("name, line or env order changed the fingerprint")
	}
	empty1, empty2 := base(), base()
	empty1.Env, empty2.Env = nil, map[string]string{}
	if empty1.Fingerprint() != empty2.Fingerprint() {
		t.Error("nil and empty env differ")
	}
	changes := map[string]func(f *Function){
		"runtime":   func(f *Function) { f.Runtime = "lambda" },
		"build":     func(f *Function) { f.Build = "make" },
		"command":   func(f *Function) { f.Command = []string{"x", "y"} },
		"argv join": func(f *Function) { f.Command = []string{"x y"} },
		"cwd":       func(f *Function) { f.Cwd = "/v" },
		"env value": func(f *Function) { f.Env["A"] = "2" },
		"env key":   func(f *Function) { f.Env["C"] = "" },
		"memory":    func(f *Function) { f.Memory = 256 },
		"timeout":   func(f *Function) { f.Timeout = 2 * time.Second },
		"conc":      func(f *Function) { f.Concurrency = 2 },
		"max":       func(f *Function) { f.MaxInstances = 2 },
		"keep_warm": func(f *Function) { f.KeepWarm = 1 },
		"idle":      func(f *Function) { f.KeepAlive = keepalive.Spec{Kind: keepalive.KindFixed, Fixed: 1} },
		"policy":    func(f *Function) { f.KeepAlive = keepalive.Spec{Kind: keepalive.KindHybrid} },
		"init":      func(f *Function) { f.InitTimeout = 1 },
		"routes":    func(f *Function) { f.Routes = []string{"/"} },
		"readiness": func(f *Function) { f.Readiness.Path = "/h" },
	}
	for name, change := range changes {
		f := base()
		change(f)
		if f.Fingerprint() == fp {
			t.Errorf("changing %s kept the fingerprint", name)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"/hello", "/hello", true},
		{"/hello", "/hello/", false},
		{"/hello", "/hellox", false},
		{"/hello/*", "/hello/", true},
		{"/hello/*", "/hello/a/b", true},
		{"/hello/*", "/hello", false},
		{"/hello*", "/hello", true},
		{"/hello*", "/hellox", true},
		{"/hello*", "/hello/a", true},
		{"/hello*", "/hell", false},
		{"/*", "/", true},
		{"/*", "/anything", true},
		{"/", "/x", false},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.path); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
	}
}

func TestOverlap(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"/a", "/a", true},
		{"/a", "/b", false},
		{"/hello/*", "/hello/world", true},
		{"/hello/*", "/hello", false},
		{"/hello*", "/hello", true},
		{"/a*", "/ab", true},
		{"/ab*", "/a", false},
		{"/a*", "/ab*", true},
		{"/a/*", "/b/*", false},
		{"/*", "/x", true},
		{"/hello/*", "/hello*", true},
	}
	for _, tt := range tests {
		if got := Overlap(tt.a, tt.b); got != tt.want {
			t.Errorf("Overlap(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := Overlap(tt.b, tt.a); got != tt.want {
			t.Errorf("Overlap(%q, %q) = %v, want %v (reversed)", tt.b, tt.a, got, tt.want)
		}
		// Overlap must agree with Match on the witness path.
		if tt.want {
			w := witness(tt.a, tt.b)
			if !Match(tt.a, w) || !Match(tt.b, w) {
				t.Errorf("witness %q of %q, %q does not match both", w, tt.a, tt.b)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(fullExample))
	f.Add([]byte(fn("    routes: [/a*, /a/b]\n    env: {A: ${X}}\n")))
	f.Add([]byte("a: &a [*a]\nfunctions: {x: &f {<<: *f}}\n"))
	f.Add([]byte("functions:\n  a:\n    runtime: http\n   command: x\n"))
	f.Add([]byte("gateway: {timeout: 10, queue_size: -1, max_body: 1e3}\nlisten: [::1]:80\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("stoke.yaml", data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("cfg %v, err %v: want exactly one", cfg, err)
		}
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "stoke.yaml:") {
					t.Fatalf("error line without file: %q", line)
				}
			}
		}
	})
}

func TestPythonWSGI(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stoke.yaml")
	text := "functions:\n  api:\n    runtime: python-wsgi\n    django_settings: mysite.settings\n" +
		"  flask:\n    runtime: python-wsgi\n    handler: app:app\n    python: venv/bin/python\n    snapshot: false\n    init_boost: false\n"
	cfg, err := Parse(path, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	api, flask := cfg.Functions["api"], cfg.Functions["flask"]
	if want := (Python{DjangoSettings: "mysite.settings", Interpreter: "python3", Snapshot: true}); api.Python != want || !api.InitBoost {
		t.Errorf("api: %+v boost %t, want %+v boost true", api.Python, api.InitBoost, want)
	}
	if want := (Python{Handler: "app:app", Interpreter: filepath.Join(dir, "venv/bin/python")}); flask.Python != want || flask.InitBoost {
		t.Errorf("flask: %+v boost %t, want %+v boost false", flask.Python, flask.InitBoost, want)
	}
	if api.Fingerprint() == flask.Fingerprint() {
		t.Error("different python settings, same fingerprint")
	}
}

// A build's ${VAR} references run with their values but are shown as
// written: in the "built" log line, errors, stored versions; what the
// build prints is shown without them or the secret env values.
func TestBuildSecretsNotShown(t *testing.T) {
	t.Setenv("STOKE_TEST_BUILD_TOKEN", "npm-token-0123456789")
	t.Setenv("STOKE_TEST_DB_PASSWORD", "db-password-0123456789")
	const build = `npm config set //registry/:_authToken ${STOKE_TEST_BUILD_TOKEN} && echo $$HOME`
	text := "functions:\n  f:\n    runtime: http\n    command: [./app]\n    build: " + build + "\n    env: {DB: '${STOKE_TEST_DB_PASSWORD}'}\n"
	cfg, err := Parse(filepath.Join(t.TempDir(), "stoke.yaml"), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Functions["f"]
	if f.Build != "npm config set //registry/:_authToken npm-token-0123456789 && echo $HOME" {
		t.Errorf("the build runs %q", f.Build)
	}
	if got := f.ShownBuild(); got != build {
		t.Errorf("shown build %q, want it as written", got)
	}
	if got := f.Redacted().Build; got != build {
		t.Errorf("stored build %q, want it as written", got)
	}
	out := f.RedactBuildOutput("token npm-token-0123456789 set\npassword db-password-0123456789\n")
	if out != "token "+Redacted+" set\npassword "+Redacted+"\n" {
		t.Errorf("build output shown as %q", out)
	}
	plain := &Function{Build: "make"}
	if plain.ShownBuild() != "make" || plain.Redacted().Build != "make" || plain.RedactBuildOutput("ok") != "ok" {
		t.Error("a build without references is shown as it is")
	}
}
