package zappa

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/config"
)

// TestRealSettings imports the settings files of public projects
// (testdata/real/SOURCES.md) from where they live, each directory named after
// its repository as a checkout would be.
func TestRealSettings(t *testing.T) {
	type want struct {
		stage, function string
		format          Format
		handler, django string
		memory          int
		timeout         time.Duration
		keepWarm        int
		routes          bool
		notes           map[string]Kind // key → kind, for the keys that matter
		err             string          // the import must fail with this
	}
	for dir, w := range map[string]want{
		"terracota-test": {stage: "production", function: "tc-test-production", format: TOML, handler: "terracotta.server.app:app",
			memory: 500, timeout: 30 * time.Second, keepWarm: 1, routes: true,
			notes: map[string]Kind{"cache_cluster_enabled": Unsupported, "debug": Honoured, "callbacks": Unsupported, "s3_bucket": NotNeeded,
				"aws_environment_variables": Honoured, "touch_path": Honoured}},
		"alexa-madlib-generator": {stage: "dev", function: "alexa-madlib-ge-dev", format: JSON, handler: "madlib:app",
			memory: 512, timeout: 30 * time.Second, keepWarm: 1, routes: true, notes: map[string]Kind{"project_name": Changed, "profile_name": NotNeeded}},
		"onlineweb4": {stage: "prod", function: "onlineweb4-prod", format: YAML, django: "onlineweb4.settings", memory: 1024,
			timeout: 30 * time.Second, keepWarm: 1, routes: true,
			notes: map[string]Kind{"debug": Honoured, "events": Unsupported, "domain": Unsupported, "cors": Unsupported,
				"extra_permissions": Unsupported, "environment_variables": Honoured, "aws_environment_variables": Honoured}},
		"saucerbot": {stage: "staging", function: "saucerbot-staging", format: YAML, django: "saucerbot.settings", memory: 512,
			timeout: 30 * time.Second, keepWarm: 1, routes: true, notes: map[string]Kind{"runtime": Changed}},
		"github-pr-webhook-lambda": {stage: "main", function: "github-merged-prs-main", format: YAML, handler: "main:app", memory: 128,
			timeout: time.Minute, routes: true,
			notes: map[string]Kind{"keep_warm": Honoured, "exception_handler": Unsupported, "delete_local_zip": NotNeeded, "timeout_seconds": Changed}},
		"lambda-aws-resource-monitor": {stage: "main", err: `stage "main" is not a web app: it has no app_function or django_settings, only events, apigateway_enabled: false`},
		"zappa-demo-project": {stage: "dev", function: "popzappademo-dev", format: YAML, handler: "app.app:app", memory: 512,
			timeout: 30 * time.Second, routes: true, notes: map[string]Kind{"keep_warm": Honoured}},
		"riskHeatMap": {stage: "dev", function: "riskheatmap-dev", format: YAML, handler: "hello_world:app", memory: 512,
			timeout: 30 * time.Second, keepWarm: 1, routes: true, notes: map[string]Kind{"domain": Unsupported, "project_name": Changed}},
		"Cafe-BE": {stage: "dev", function: "officecafe-be-dev", format: JSON, django: "OfficeCafe.settings", memory: 512,
			timeout: 30 * time.Second, keepWarm: 1, routes: true},
		"api": {stage: "prod", function: "audiopedia-prod", format: JSON, django: "audiopedia.settings.prod", memory: 512,
			timeout: 30 * time.Second, keepWarm: 1, routes: true, notes: map[string]Kind{"profile_name": Honoured}},
		"django-zappa-sample": {stage: "dev", function: "django-zappa-sa-dev", format: HJSON, django: "django_zappa_sample.settings",
			memory: 512, timeout: 30 * time.Second, routes: true,
			notes: map[string]Kind{"(file)": Changed, "manage_roles": Honoured, "role_name": Unsupported, "keep_warm": Honoured}},
		"fml": {stage: "dev", function: "fml-dev", format: JSON, django: "fml.settings", memory: 512, timeout: 15 * time.Minute,
			keepWarm: 1, routes: true,
			notes: map[string]Kind{"slim_handler": Honoured, "manage_roles": Honoured, "role_arn": Unsupported, "vpc_config": Unsupported, "timeout_seconds": Changed}},
		"trufflehog_notifier": {stage: "production", err: `app_function: "main" is not a module path and a callable`},
		// A module file named what Python names cannot be: Zappa's
		// importlib imports it, and so does Stoke's shim.
		"alexa-sleep-tracker": {stage: "dev", function: "sleep-tracker-dev", format: JSON, handler: "sleep-tracker:app", memory: 512,
			timeout: 30 * time.Second, keepWarm: 1, routes: true},
		"DNAvisualization.org": {stage: "dev", function: "squiggle-server-dev", format: JSON, handler: "app:app", memory: 3008,
			timeout: 30 * time.Second, keepWarm: 1, routes: true, notes: map[string]Kind{"slim_handler": NotNeeded}},
		"usage-based-discovery": {stage: "dev", function: "ubd-tool-dev", format: YAML, handler: "app:app", memory: 512,
			timeout: 30 * time.Second, keepWarm: 1, routes: true,
			notes: map[string]Kind{"manage_roles": NotNeeded, "vpc_config": Unsupported, "profile_name": Honoured}},
		"backups": {stage: "prod", function: "db-backups-prod", format: YAML, handler: "backups:app", memory: 512,
			timeout: 30 * time.Second, keepWarm: 1, routes: true, notes: map[string]Kind{"events": Unsupported}},
	} {
		t.Run(dir, func(t *testing.T) {
			p, err := Find(filepath.Join("testdata", "real", dir))
			if err != nil {
				t.Fatal(err)
			}
			data := mustRead(t, p)
			out := filepath.Join(t.TempDir(), "stoke.yaml")
			r, err := Import(p, data, Options{Stage: w.stage, Output: out})
			if w.err != "" {
				if err == nil || !strings.Contains(err.Error(), w.err) {
					t.Fatalf("got %v, want an error containing %q", err, w.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Function != w.function || r.Format != w.format {
				t.Errorf("function %q format %s, want %q %s", r.Function, r.Format, w.function, w.format)
			}
			fn := r.Config.Functions[r.Function]
			if fn == nil {
				t.Fatalf("function %s missing from\n%s", r.Function, r.YAML)
			}
			if fn.Python.Handler != w.handler || fn.Python.DjangoSettings != w.django {
				t.Errorf("handler %q django %q, want %q %q", fn.Python.Handler, fn.Python.DjangoSettings, w.handler, w.django)
			}
			if fn.Memory != w.memory || fn.Timeout != w.timeout || fn.KeepWarm != w.keepWarm || (len(fn.Routes) > 0) != w.routes {
				t.Errorf("memory %d timeout %s keep_warm %d routes %v; want %d %s %d %v", fn.Memory, fn.Timeout, fn.KeepWarm, fn.Routes, w.memory, w.timeout, w.keepWarm, w.routes)
			}
			for key, kind := range w.notes {
				if _, ok := noteFor(r, key, kind); !ok {
					t.Errorf("no %v note for %s; notes: %v", kind, key, r.Notes)
				}
			}
			// Every key of the stage is accounted for, and nothing the
			// app sees is hidden under "not needed".
			stages, _, err := decode(p, data)
			if err != nil {
				t.Fatal(err)
			}
			settings, _ := resolveExtends(p, stages, r.Stage)
			for key := range settings {
				found := false
				for _, n := range r.Notes {
					found = found || n.Key == key
				}
				if !found {
					t.Errorf("key %s not accounted for", key)
				}
			}
			// The written file loads as `stoke serve` would load it.
			if err := os.WriteFile(out, r.YAML, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := config.Load(out); err != nil {
				t.Errorf("written config: %v", err)
			}
		})
	}
}
