package zappa

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/lambdaspec"
)

// Zappa's defaults (README "Advanced Settings") for the keys that shape the
// function, applied when a stage leaves them out.
const (
	defaultMemory  = 512
	defaultTimeout = 30
	// keep_warm defaults to true: one container pinged every 4 minutes.
	defaultKeepWarm = 1
	// Stoke's own default max_instances, raised if keep_warm needs more.
	defaultMaxInstances = 10
	maxInstancesLimit   = 10000
)

// mapper builds the function from one stage's merged settings.
type mapper struct {
	python     string // the interpreter written as python:
	file       string
	stage      string
	s          map[string]any
	projectDir string // absolute directory of the settings file
	outDir     string // absolute directory of the output file

	notes []Note
	done  map[string]bool // keys already accounted for

	name              string
	region            string
	handler, django   string
	memory            int64
	tmpMB             int64 // ephemeral_storage's Size; 0: not set
	timeout           int64
	keepWarm, maxInst int64
	env               map[string]string
	envSource         map[string]string // env name → Zappa key it came from
	routes            bool
	readinessPath     string
	build             string
	description       string
	pythonNote        string
}

func (m *mapper) note(key string, kind Kind, format string, args ...any) {
	if m.done == nil {
		m.done = map[string]bool{}
	}
	m.done[key] = true
	m.notes = append(m.notes, Note{Key: key, Kind: kind, Why: fmt.Sprintf(format, args...)})
}

// drop removes key's notes, for a note about to be replaced.
func (m *mapper) drop(key string) {
	kept := m.notes[:0]
	for _, n := range m.notes {
		if n.Key != key {
			kept = append(kept, n)
		}
	}
	m.notes = kept
}

func (m *mapper) errf(key, format string, args ...any) error {
	return fmt.Errorf("%s: stage %q: %s: %s", m.file, m.stage, key, fmt.Sprintf(format, args...))
}

func (m *mapper) run() error {
	for _, step := range []func() error{m.app, m.function, m.sizes, m.warmth, m.environment, m.http, m.misc} {
		if err := step(); err != nil {
			return err
		}
	}
	// Whatever is left is Zappa's packaging (not needed here), a switch
	// that is off, a feature without a Stoke counterpart, or not a Zappa
	// key at all.
	for key, v := range m.s {
		if m.done[key] {
			continue
		}
		switch {
		case !knownKey(key):
			m.note(key, Unknown, "unknown Zappa key, ignored")
		case v == nil:
			m.note(key, Honoured, "null: Zappa's default applies")
		case isOff(v):
			m.note(key, Honoured, "off (%s); nothing to carry over", compact(v))
		case notNeeded[key] != "":
			m.note(key, NotNeeded, "%s", notNeeded[key])
		default:
			m.note(key, Unsupported, "%s", unsupported(key))
		}
	}
	return nil
}

// nonWeb are the keys of a stage that runs functions on events rather than
// serving a web app.
var nonWeb = []string{"lambda_handler", "events", "bot_events", "cognito"}

// app maps app_function / django_settings to handler / django_settings.
func (m *mapper) app() error {
	af, hasAF, err := m.str("app_function")
	if err != nil {
		return err
	}
	ds, hasDS, err := m.str("django_settings")
	if err != nil {
		return err
	}
	if hasDS && !config.ValidPythonName(ds) {
		return m.errf("django_settings", "%q is not a Python module path; want e.g. mysite.settings", ds)
	}
	switch {
	case hasAF:
		if strings.HasSuffix(af, ".py") {
			return m.errf("app_function", "%q names a file, not a function; it should be like %s.app (the module, then the WSGI callable), as Zappa warns too", af, strings.TrimSuffix(af, ".py"))
		}
		// Zappa splits at the last dot: module path, then the callable.
		mod, fn, ok := cut(af)
		if !ok {
			return m.errf("app_function", "%q is not a module path and a callable, like app.app or mysite.wsgi.application (Zappa refuses it too: \"not a modular path\")", af)
		}
		if !config.ValidModulePath(mod) || !config.ValidPythonName(fn) {
			return m.errf("app_function", "%q is not a module path and a callable Stoke can import, like app.app or mysite.wsgi.application", af)
		}
		m.handler = mod + ":" + fn
		m.note("app_function", Honoured, "handler: %s", m.handler)
		if hasDS {
			// Zappa serves app_function then, with DJANGO_SETTINGS_MODULE
			// set from django_settings; Stoke takes one of the two keys.
			m.note("django_settings", Honoured, "env DJANGO_SETTINGS_MODULE: %s (with app_function set, Zappa serves app_function and sets this variable)", ds)
			m.django = ds
		}
	case hasDS:
		m.django = ds
		m.note("django_settings", Honoured, "django_settings: %s (serves django.core.wsgi's application, as Zappa does)", ds)
	default:
		var has []string
		for _, k := range nonWeb {
			if v, ok := m.s[k]; ok && !isOff(v) {
				has = append(has, k)
			}
		}
		if v, ok := m.s["apigateway_enabled"]; ok && v == false {
			has = append(has, "apigateway_enabled: false")
		}
		if len(has) > 0 {
			return fmt.Errorf("%s: stage %q is not a web app: it has no app_function or django_settings, only %s (functions Zappa runs on schedules or AWS events). Stoke imports WSGI web apps; run scheduled functions with cron, or package the handler as a runtime: lambda function (docs/lambda.md)",
				m.file, m.stage, strings.Join(has, ", "))
		}
		return fmt.Errorf("%s: stage %q sets neither app_function nor django_settings; Stoke needs one to find the WSGI app (e.g. \"app_function\": \"app.app\")", m.file, m.stage)
	}
	return nil
}

// cut splits "a.b.c" into "a.b" and "c".
func cut(s string) (string, string, bool) {
	i := strings.LastIndexByte(s, '.')
	if i <= 0 || i == len(s)-1 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

// function names the function as Zappa names the Lambda function,
// slugify(project_name-stage), so Invoke API callers keep working.
func (m *mapper) function() error {
	pn, has, err := m.str("project_name")
	if err != nil {
		return err
	}
	if !has {
		// Zappa's default is its get_project_name: the working directory
		// (where zappa_settings lives), slugified, cut to 15 characters.
		pn = projectNameFromDir(m.projectDir)
	}
	m.name = slugify(pn + "-" + m.stage)
	if m.name == "" {
		return m.errf("project_name", "%q and stage %q give an empty function name; set project_name to letters and digits", pn, m.stage)
	}
	if has {
		m.note("project_name", Honoured, "function name %s (project_name-stage, slugified as Zappa names the Lambda function)", m.name)
	} else {
		m.notes = append(m.notes, Note{Key: "project_name", Kind: Changed,
			Why: fmt.Sprintf("not set; function name %s from the settings file's directory %q, slugified and cut to 15 characters as Zappa's get_project_name does (Zappa used the directory it ran in)",
				m.name, filepath.Base(m.projectDir))})
	}
	if v, ok := m.s["aws_region"]; ok && v != nil {
		r, _ := v.(string)
		if !lambdaspec.ValidRegion(r) {
			m.note("aws_region", Unsupported, "%s is not a region name like eu-west-1; region left at Stoke's default", compact(v))
		} else {
			m.region = r
			m.note("aws_region", Honoured, "region: %s (ARNs, AWS_REGION, SigV4 scope of the Invoke API)", r)
		}
	}
	return nil
}

func (m *mapper) sizes() error {
	m.memory = defaultMemory
	if n, has, err := m.integer("memory_size"); err != nil {
		return err
	} else if has {
		if n < lambdaspec.MinMemoryMB || n > lambdaspec.MaxMemoryMB {
			return m.errf("memory_size", "%d MB is out of range; allowed: %d to %d (MB), as on Lambda", n, lambdaspec.MinMemoryMB, lambdaspec.MaxMemoryMB)
		}
		m.memory = n
		m.note("memory_size", Honoured, "memory: %d", n)
	}
	if err := m.ephemeralStorage(); err != nil {
		return err
	}
	m.timeout = defaultTimeout
	if n, has, err := m.integer("timeout_seconds"); err != nil {
		return err
	} else if has {
		if maxS := int64(lambdaspec.MaxTimeout / time.Second); n < 1 || n > maxS {
			return m.errf("timeout_seconds", "%d is out of range; allowed: 1 to %d (seconds), as on Lambda", n, maxS)
		}
		m.timeout = n
		if n > 30 {
			m.note("timeout_seconds", Changed, "timeout: %s, above gateway.timeout 30s (API Gateway's limit too): HTTP requests are still cut at 30s; raise gateway.timeout to let them run longer", fmtSeconds(n))
		} else {
			m.note("timeout_seconds", Honoured, "timeout: %s", fmtSeconds(n))
		}
	}
	return nil
}

// ephemeralStorage maps Zappa's {"Size": MB} (Lambda's /tmp) to
// ephemeral_storage, the size of an isolated instance's private /tmp.
func (m *mapper) ephemeralStorage() error {
	const key = "ephemeral_storage"
	v, ok := m.s[key]
	if !ok || v == nil {
		return nil
	}
	obj, _ := v.(map[string]any)
	size, ok := obj["Size"].(json.Number)
	if !ok || len(obj) != 1 {
		return m.errf(key, `expected {"Size": MB}, got %s`, compact(v))
	}
	n, err := size.Int64()
	if f, ferr := size.Float64(); err != nil && ferr == nil && f == float64(int64(f)) {
		n, err = int64(f), nil // 1024.0
	}
	if err != nil || n < lambdaspec.MinEphemeralStorageMB || n > lambdaspec.MaxEphemeralStorageMB {
		return m.errf(key, "Size %s is out of range; allowed: %d to %d (MB), as on Lambda", size, lambdaspec.MinEphemeralStorageMB, lambdaspec.MaxEphemeralStorageMB)
	}
	m.tmpMB = n
	if n > m.memory {
		m.note(key, Changed, "ephemeral_storage: %d, but /tmp is memory on Stoke (tmpfs) and counts toward memory: %d MB, so it holds less than that", n, m.memory)
	} else {
		m.note(key, Honoured, "ephemeral_storage: %d (MB of private /tmp; it counts toward memory)", n)
	}
	return nil
}

func fmtSeconds(n int64) string { return config.FormatDuration(time.Duration(n) * time.Second) }

// warmth maps keep_warm and lambda_concurrency. Zappa's keep_warm is a
// schedule that pings one container; Stoke keeps N instances initialised.
func (m *mapper) warmth() error {
	m.keepWarm = defaultKeepWarm
	if v, ok := m.s["keep_warm"]; ok && v != nil {
		switch t := v.(type) {
		case bool:
			if t {
				m.note("keep_warm", Honoured, "keep_warm: 1 (true kept one container warm)")
			} else {
				m.keepWarm = 0
				m.note("keep_warm", Honoured, "keep_warm: 0")
			}
		case json.Number:
			n, err := t.Int64()
			if err != nil || n < 0 || n > maxInstancesLimit {
				return m.errf("keep_warm", "%s is not a number of instances; allowed: true, false or 0 to %d", t, maxInstancesLimit)
			}
			m.keepWarm = n
			m.note("keep_warm", Honoured, "keep_warm: %d (instances kept initialised at all times)", n)
		default:
			return m.errf("keep_warm", "expected true, false or a number of instances, got %s", describe(v))
		}
	}
	m.maxInst = defaultMaxInstances
	n, has, err := m.integer("lambda_concurrency")
	if err != nil {
		return err
	}
	switch {
	case has && (n < 1 || n > maxInstancesLimit):
		m.note("lambda_concurrency", Unsupported, "%d cannot be max_instances (allowed: 1 to %d); max_instances left at %d", n, maxInstancesLimit, m.maxInst)
		has = false
	case has:
		m.maxInst = n
		m.note("lambda_concurrency", Honoured, "max_instances: %d (reserved concurrency caps concurrent instances)", n)
	}
	if m.keepWarm > m.maxInst {
		if has {
			// The cap is the user's explicit choice; keep_warm cannot
			// exceed it, as on Lambda where pings beyond it throttle.
			m.drop("keep_warm")
			m.notes = append(m.notes, Note{Key: "keep_warm", Kind: Changed,
				Why: fmt.Sprintf("lowered from %d to %d, the max_instances lambda_concurrency sets", m.keepWarm, m.maxInst)})
			m.keepWarm = m.maxInst
		} else {
			m.maxInst = m.keepWarm
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
