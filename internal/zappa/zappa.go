// Package zappa turns a Zappa project's zappa_settings.json into a Stoke config.
//
// One Zappa stage becomes one python-wsgi function. Every key of the stage is
// accounted for: carried over (memory_size → memory, keep_warm → keep_warm,
// …), honoured as is (binary_support), or listed as not imported with the
// reason, so a user moving off Zappa knows exactly what changed.
package zappa

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/lambdaspec"
)

// Kind says what happened to one Zappa key.
type Kind int

const (
	// Honoured: the key's meaning carries over to the generated config.
	Honoured Kind = iota
	// Changed: carried over, but with a difference the user should check.
	Changed
	// Unsupported: a Zappa feature Stoke does not reproduce.
	Unsupported
	// Unknown: not a documented Zappa key (a typo, or a newer Zappa).
	Unknown
)

// Note is the fate of one key of the stage.
type Note struct {
	Key  string
	Kind Kind
	Why  string
}

func (n Note) String() string { return n.Key + ": " + n.Why }

// Options are the import's inputs besides the settings themselves.
type Options struct {
	// Stage to import; empty picks the only stage, or fails listing them.
	Stage string
	// Output is where the stoke.yaml will be written (need not exist yet);
	// cwd is written relative to its directory. Empty means ./stoke.yaml.
	Output string
	// Python is the interpreter to write as python:; empty means python3.
	Python string
}

// Result is a generated config and the account of every key.
type Result struct {
	Stage    string
	Function string
	YAML     []byte
	Notes    []Note // sorted by key
	// Warnings are config.Parse's warnings about the generated file (say,
	// a timeout above the gateway's).
	Warnings []string
}

// Select returns the notes of the given kinds, in key order.
func (r *Result) Select(kinds ...Kind) []Note {
	var out []Note
	for _, n := range r.Notes {
		for _, k := range kinds {
			if n.Kind == k {
				out = append(out, n)
			}
		}
	}
	return out
}

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

// Import reads Zappa settings (JSON, or YAML for a .yml/.yaml file, as Zappa
// accepts both) from data, path naming the file for messages and locating
// the project, and returns the Stoke config for one stage.
func Import(path string, data []byte, opt Options) (*Result, error) {
	stages, err := decode(path, data)
	if err != nil {
		return nil, err
	}
	stage, err := pickStage(path, stages, opt.Stage)
	if err != nil {
		return nil, err
	}
	settings, err := resolveExtends(path, stages, stage)
	if err != nil {
		return nil, err
	}
	absSettings, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("locate %s: %w", path, err)
	}
	out := opt.Output
	if out == "" {
		out = "stoke.yaml"
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return nil, fmt.Errorf("locate %s: %w", out, err)
	}
	py := opt.Python
	if py == "" {
		py = "python3"
	}
	m := &mapper{python: py, file: path, stage: stage, s: settings, projectDir: filepath.Dir(absSettings), outDir: filepath.Dir(absOut)}
	if err := m.run(); err != nil {
		return nil, err
	}
	doc, err := m.render()
	if err != nil {
		return nil, err
	}
	// The file is only useful if Stoke accepts it: check with the real
	// parser, so a mapping bug shows here and not at `stoke serve`.
	cfg, err := config.Parse(out, doc)
	if err != nil {
		return nil, fmt.Errorf("the generated config does not validate (an importer bug; please report it): %w", err)
	}
	sort.SliceStable(m.notes, func(i, j int) bool { return m.notes[i].Key < m.notes[j].Key })
	return &Result{Stage: stage, Function: m.name, YAML: doc, Notes: m.notes, Warnings: cfg.Warnings}, nil
}

// decode parses the settings file into stage → settings.
func decode(path string, data []byte) (map[string]map[string]any, error) {
	var top any
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yml", ".yaml":
		var y any
		if err := yaml.Unmarshal(data, &y); err != nil {
			return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		// A JSON round trip gives YAML the same value types as JSON
		// (json.Number, map[string]any), so one mapper serves both.
		b, err := json.Marshal(y)
		if err != nil {
			return nil, fmt.Errorf("%s: settings must be a mapping of stage names to mappings of string keys: %w", path, err)
		}
		data = b
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keeps 3 and 3.5 apart, so integers can be checked
	if err := dec.Decode(&top); err != nil {
		return nil, jsonErr(path, data, dec, err)
	}
	if dec.More() {
		off := dec.InputOffset()
		line, col := lineCol(data, off)
		return nil, fmt.Errorf("%s:%d:%d: unexpected data after the settings object", path, line, col)
	}
	obj, ok := top.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: expected an object of stages (like {\"dev\": {...}}), got %s", path, describe(top))
	}
	stages := map[string]map[string]any{}
	for name, v := range obj {
		s, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: stage %q: expected an object of settings, got %s", path, name, describe(v))
		}
		stages[name] = s
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("%s: no stages; Zappa settings look like {\"dev\": {\"app_function\": \"app.app\"}}", path)
	}
	return stages, nil
}

// jsonErr turns a decoding error into file:line:col: message.
func jsonErr(path string, data []byte, dec *json.Decoder, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := lineCol(data, syn.Offset)
		return fmt.Errorf("%s:%d:%d: invalid JSON: %s", path, line, col, syn.Error())
	case errors.As(err, &typ):
		line, col := lineCol(data, typ.Offset)
		return fmt.Errorf("%s:%d:%d: invalid JSON: %s", path, line, col, typ.Error())
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		// The position just past the last byte: where more was expected.
		line, col := lineCol(data, int64(len(data)))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			col++
		}
		return fmt.Errorf("%s:%d:%d: invalid JSON: unexpected end of file", path, line, col)
	}
	line, col := lineCol(data, dec.InputOffset())
	return fmt.Errorf("%s:%d:%d: invalid JSON: %w", path, line, col, err)
}

// lineCol converts a byte offset into a 1-based line and column. JSON's
// offsets point just past the offending byte, so the column names it.
func lineCol(data []byte, off int64) (int, int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, max(col, 1)
}

func stageNames(stages map[string]map[string]any) string {
	names := make([]string, 0, len(stages))
	for n := range stages {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func pickStage(path string, stages map[string]map[string]any, want string) (string, error) {
	if want != "" {
		if _, ok := stages[want]; !ok {
			return "", fmt.Errorf("%s has no stage %q; stages: %s", path, want, stageNames(stages))
		}
		return want, nil
	}
	if len(stages) == 1 {
		for name := range stages {
			return name, nil
		}
	}
	return "", fmt.Errorf("%s has %d stages (%s); choose one with --stage", path, len(stages), stageNames(stages))
}

// resolveExtends applies Zappa's extends: the stage's keys over its
// parent's, recursively. Like Zappa, the merge is shallow: a stage that sets
// environment_variables replaces its parent's whole map.
func resolveExtends(path string, stages map[string]map[string]any, stage string) (map[string]any, error) {
	chain := []string{stage}
	for cur := stage; ; {
		v, ok := stages[cur]["extends"]
		if !ok || v == nil {
			break
		}
		parent, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s: stage %q: extends must be a stage name, got %s", path, cur, describe(v))
		}
		if _, ok := stages[parent]; !ok {
			return nil, fmt.Errorf("%s: stage %q extends %q, which is not a stage; stages: %s", path, cur, parent, stageNames(stages))
		}
		for _, seen := range chain {
			if seen == parent {
				return nil, fmt.Errorf("%s: extends cycle: %s → %s", path, strings.Join(chain, " → "), parent)
			}
		}
		chain = append(chain, parent)
		cur = parent
	}
	merged := map[string]any{}
	for i := len(chain) - 1; i >= 0; i-- {
		for k, v := range stages[chain[i]] {
			merged[k] = v
		}
	}
	delete(merged, "extends")
	return merged, nil
}

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
	// Whatever is left is either a Zappa feature without a Stoke
	// counterpart or not a Zappa key at all.
	for key, v := range m.s {
		if m.done[key] {
			continue
		}
		why, known := unsupported(key)
		switch {
		case !known && !mapped[key]:
			m.note(key, Unknown, "unknown Zappa key, ignored")
		case v == nil:
			m.note(key, Honoured, "null: Zappa's default applies")
		case offByDefault[key] && isOff(v):
			m.note(key, Honoured, "off (%s); Stoke has no such feature either", compact(v))
		default:
			m.note(key, Unsupported, "%s", why)
		}
	}
	return nil
}

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
		// Zappa splits at the last dot: module path, then the callable.
		mod, fn, ok := cut(af)
		if !ok || !config.ValidPythonName(mod) || !config.ValidPythonName(fn) {
			return m.errf("app_function", "%q is not a module path and a callable, like app.app or mysite.wsgi.application", af)
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
	src := "project_name"
	if !has {
		// Zappa's default is the slugified working directory, which is
		// where zappa_settings.json lives.
		pn, src = filepath.Base(m.projectDir), "the settings file's directory"
	}
	m.name = slugify(pn + "-" + m.stage)
	if m.name == "" {
		return m.errf("project_name", "%q and stage %q give an empty function name; set project_name to letters and digits", pn, m.stage)
	}
	if has {
		m.note("project_name", Honoured, "function name %s (project_name-stage, slugified as Zappa names the Lambda function)", m.name)
	} else {
		m.notes = append(m.notes, Note{Key: "project_name", Kind: Changed,
			Why: fmt.Sprintf("not set; function name %s from %s and the stage, as Zappa does", m.name, src)})
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

// slugify lowercases and turns every run of other characters than a-z and
// 0-9 into one '-', like python-slugify, then fits Lambda's 64 characters.
func slugify(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	out := b.String()
	if len(out) > lambdaspec.MaxFunctionName {
		out = strings.TrimRight(out[:lambdaspec.MaxFunctionName], "-")
	}
	return out
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

// environment merges environment_variables and aws_environment_variables.
// Zappa's handler copies environment_variables into os.environ when it
// starts, over the Lambda environment where aws_environment_variables live,
// so on a conflict the app sees environment_variables: so does this.
func (m *mapper) environment() error {
	m.env = map[string]string{}
	m.envSource = map[string]string{}
	var conflicts []string
	for _, key := range []string{"aws_environment_variables", "environment_variables"} {
		v, ok := m.s[key]
		if !ok || v == nil {
			continue
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return m.errf(key, "expected an object of NAME: value, got %s", describe(v))
		}
		names := make([]string, 0, len(obj))
		for n := range obj {
			names = append(names, n)
		}
		sort.Strings(names)
		var skipped []string
		for _, n := range names {
			val, ok := scalarString(obj[n])
			switch {
			case !ok:
				skipped = append(skipped, fmt.Sprintf("%s (value is %s, not a string)", n, describe(obj[n])))
				continue
			case !lambdaspec.ValidEnvName(n):
				skipped = append(skipped, fmt.Sprintf("%s (not a valid variable name)", n))
				continue
			case lambdaspec.ReservedEnv(n):
				skipped = append(skipped, fmt.Sprintf("%s (reserved: Stoke sets it, as Lambda does)", n))
				continue
			}
			if old, dup := m.env[n]; dup && old != val {
				conflicts = append(conflicts, n)
			}
			m.env[n] = val
			m.envSource[n] = key
		}
		if len(skipped) > 0 {
			m.note(key, Changed, "%d variable(s) in env; not imported: %s", len(obj)-len(skipped), strings.Join(skipped, "; "))
		} else {
			m.note(key, Honoured, "%d variable(s) in env", len(obj))
		}
	}
	if len(conflicts) > 0 {
		m.notes = append(m.notes, Note{Key: "environment_variables", Kind: Changed,
			Why: fmt.Sprintf("also set in aws_environment_variables with another value: %s; environment_variables wins, as in Zappa (its handler sets them over the Lambda environment at start)", strings.Join(conflicts, ", "))})
	}
	if m.django != "" && m.handler != "" {
		if old, ok := m.env["DJANGO_SETTINGS_MODULE"]; ok && old != m.django {
			m.notes = append(m.notes, Note{Key: "django_settings", Kind: Changed,
				Why: fmt.Sprintf("DJANGO_SETTINGS_MODULE %s from %s replaced by django_settings %s, as Zappa does", old, m.envSource["DJANGO_SETTINGS_MODULE"], m.django)})
		}
		m.env["DJANGO_SETTINGS_MODULE"] = m.django
		m.envSource["DJANGO_SETTINGS_MODULE"] = "django_settings"
		m.django = ""
	}
	return nil
}

// http maps the keys about how requests reach the app.
func (m *mapper) http() error {
	m.routes = true
	for _, key := range []string{"apigateway_enabled", "use_apigateway"} {
		v, ok := m.s[key]
		if !ok || v == nil {
			continue
		}
		b, isBool := v.(bool)
		switch {
		case !isBool:
			return m.errf(key, "expected true or false, got %s", describe(v))
		case b:
			m.note(key, Honoured, "routes: [/*] (every path goes to this function)")
		default:
			m.routes = false
			m.note(key, Honoured, "false: no routes; the function is reachable only by name, through the Lambda Invoke API")
		}
	}
	if v, ok := m.s["binary_support"]; ok {
		if b, isBool := v.(bool); isBool && !b {
			m.note("binary_support", Changed, "false, but Stoke always passes request and response bodies as bytes; text responses are unaffected")
		} else {
			m.note("binary_support", Honoured, "Stoke always passes request and response bodies as bytes, binary or text")
		}
	}
	if _, ok := m.s["additional_text_mimetypes"]; ok {
		m.note("additional_text_mimetypes", Honoured, "not needed: bodies pass as bytes whatever their MIME type")
	}
	touch := true
	if v, ok := m.s["touch"]; ok && v != nil {
		b, isBool := v.(bool)
		if !isBool {
			return m.errf("touch", "expected true or false, got %s", describe(v))
		}
		touch = b
		if b {
			m.note("touch", Honoured, "Stoke sends a warm-up request before an instance serves (readiness)")
		} else {
			m.note("touch", Changed, "false, but Stoke always sends a warm-up request (readiness) before an instance serves")
		}
	}
	if p, has, err := m.str("touch_path"); err != nil {
		return err
	} else if has {
		switch {
		case !touch:
			m.note("touch_path", Unsupported, "touch is false; readiness keeps its default path /")
		case !strings.HasPrefix(p, "/"):
			m.note("touch_path", Unsupported, "%q does not start with /; readiness keeps its default path /", p)
		default:
			m.readinessPath = p
			m.note("touch_path", Honoured, "readiness.path: %s (the warm-up request; status below 500 passes, as Zappa's touch)", p)
		}
	}
	return nil
}

func (m *mapper) misc() error {
	if v, ok := m.s["runtime"]; ok && v != nil {
		m.pythonNote = strings.Trim(compact(v), `"`)
		m.note("runtime", Changed, "Stoke runs the python: interpreter (%s), not Lambda's %s; set python: (or --python) to a venv's python, or e.g. python3.12, to match", m.python, m.pythonNote)
	}
	if p, has, err := m.str("prebuild_script"); err != nil {
		return err
	} else if has {
		mod, fn, ok := cut(p)
		if !ok || !config.ValidPythonName(mod) || !config.ValidPythonName(fn) {
			m.note("prebuild_script", Unsupported, "%q is not module.function; run it yourself from build:", p)
		} else {
			m.build = fmt.Sprintf("%s -c 'import %s; %s.%s()'", m.python, mod, mod, fn)
			m.note("prebuild_script", Honoured, "build: runs it once per deploy in cwd, as Zappa did before packaging")
		}
	}
	if d, has, err := m.str("lambda_description"); err != nil {
		return err
	} else if has {
		m.description = d
		m.note("lambda_description", Honoured, "written as a comment above the function (Stoke has no description field)")
	}
	return nil
}

// str returns a string key; absent and null are "not set".
func (m *mapper) str(key string) (string, bool, error) {
	v, ok := m.s[key]
	if !ok || v == nil {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", false, m.errf(key, "expected a string, got %s", describe(v))
	}
	return s, true, nil
}

// integer returns a whole-number key; absent and null are "not set".
func (m *mapper) integer(key string) (int64, bool, error) {
	v, ok := m.s[key]
	if !ok || v == nil {
		return 0, false, nil
	}
	num, ok := v.(json.Number)
	if !ok {
		return 0, false, m.errf(key, "expected a whole number, got %s", describe(v))
	}
	n, err := num.Int64()
	if err != nil {
		// 512.0 is a whole number written as a float; accept it.
		f, ferr := num.Float64()
		if ferr != nil || f != float64(int64(f)) {
			return 0, false, m.errf(key, "expected a whole number, got %s", num)
		}
		n = int64(f)
	}
	return n, true, nil
}

// scalarString renders a JSON scalar as an environment value. Zappa
// requires strings; numbers and booleans are accepted as their JSON text.
func scalarString(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case bool:
		return strconv.FormatBool(t), true
	}
	return "", false
}

func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return strconv.Quote(t)
	case bool:
		return strconv.FormatBool(t)
	case json.Number:
		return t.String()
	}
	return fmt.Sprintf("%v", v)
}

// compact renders a value in one short line for notes.
func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return describe(v)
	}
	s := string(b)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func isOff(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case bool:
		return !t
	case string:
		return t == ""
	case []any:
		return len(t) == 0
	case map[string]any:
		return len(t) == 0
	}
	return false
}

// mapped are the keys the mapper handles itself (when not null).
var mapped = map[string]bool{
	"app_function": true, "django_settings": true, "project_name": true, "aws_region": true,
	"memory_size": true, "timeout_seconds": true, "keep_warm": true, "lambda_concurrency": true,
	"environment_variables": true, "aws_environment_variables": true, "apigateway_enabled": true,
	"use_apigateway": true, "binary_support": true, "additional_text_mimetypes": true,
	"touch": true, "touch_path": true, "runtime": true, "prebuild_script": true,
	"lambda_description": true, "extends": true,
}

// offByDefault are feature switches that, when false or empty, ask for
// nothing Stoke lacks; listing them as "not imported" would be noise.
var offByDefault = map[string]bool{
	"slim_handler": true, "cors": true, "api_key_required": true, "iam_authorization": true,
	"xray_tracing": true, "cache_cluster_enabled": true, "alb_enabled": true, "events": true,
	"cloudwatch_data_trace": true, "cloudwatch_metrics_enabled": true, "vpc_config": true,
	"layers": true, "tags": true, "exclude": true, "exclude_glob": true, "include": true,
	"extra_permissions": true, "context_header_mappings": true, "authorizer": true,
	"remote_env": true, "dead_letter_arn": true, "domain": true, "certificate_arn": true,
	"base_path": true, "callbacks": true, "cognito": true, "snap_start": true,
	"function_url_enabled": true, "payload_compression": true, "async_resources": true,
}

// unsupported says why a documented Zappa key is not imported; known is
// false for keys Zappa does not document.
func unsupported(key string) (why string, known bool) {
	if why, ok := reasons[key]; ok {
		return why, true
	}
	if strings.HasPrefix(key, "cloudwatch_") {
		return reasons["cloudwatch_log_level"], true
	}
	return "", false
}

const (
	whyIAM     = "no IAM: the app runs with the permissions of the user running Stoke"
	whyPackage = "nothing is packaged: Stoke runs the code in place from cwd"
	whyDomain  = "no custom domains or certificates: put a TLS reverse proxy in front of the gateway"
	whyAsync   = "zappa.asynchronous tasks go through AWS (Lambda/SNS, DynamoDB); not reproduced"
	whyAPIGW   = "no API Gateway resources: the Stoke gateway is the front door"
	whyCache   = "the gateway has no response cache; cache in the app or a proxy in front"
	whyCW      = "no CloudWatch: stoke logs, stoke invocations and /metrics give logs and metrics"
)

// reasons covers every key of Zappa's settings reference (README "Advanced
// Settings", plus older names) that the mapper does not handle itself.
var reasons = map[string]string{
	"s3_bucket":                           "Stoke deploys from the local directory; there is no code bucket",
	"profile_name":                        "no AWS credentials are used: Stoke runs on this machine",
	"aws_kms_key_arn":                     "no KMS: environment variables live in stoke.yaml (use ${VAR} for secrets)",
	"aws_endpoint_urls":                   "endpoints for Zappa's AWS calls; nothing is deployed to AWS",
	"exclude":                             whyPackage,
	"exclude_glob":                        whyPackage,
	"slim_handler":                        "no package size limit: Stoke runs the code in place from cwd",
	"include":                             "libraries slim_handler loads at start; not needed, nothing is packaged",
	"use_precompiled_packages":            "nothing is packaged: the app uses the packages installed for its python interpreter",
	"delete_local_zip":                    "no zip archives are made",
	"delete_s3_zip":                       "no zip archives are made",
	"delete_zip":                          "no zip archives are made",
	"num_retained_versions":               "Stoke keeps its own record of deployed versions",
	"role_name":                           whyIAM,
	"role_arn":                            whyIAM,
	"manage_roles":                        whyIAM,
	"assume_policy":                       whyIAM,
	"attach_policy":                       whyIAM,
	"extra_permissions":                   whyIAM,
	"vpc_config":                          "no VPCs: instances run on this machine's network",
	"alb_enabled":                         "no load balancer to provision: the Stoke gateway is the front door",
	"alb_vpc_config":                      "no load balancer to provision: the Stoke gateway is the front door",
	"events":                              "no event sources or schedules; invoke through the Lambda Invoke API or HTTP routes (use cron for schedules)",
	"cognito":                             "no Cognito triggers: no event sources; invoke through the Lambda Invoke API",
	"keep_warm_expression":                "Stoke keeps instances warm continuously; there is no schedule to set",
	"domain":                              whyDomain,
	"base_path":                           whyDomain + "; routes serve at the gateway root",
	"certificate":                         whyDomain,
	"certificate_key":                     whyDomain,
	"certificate_chain":                   whyDomain,
	"certificate_arn":                     whyDomain,
	"route53_enabled":                     whyDomain,
	"lets_encrypt_key":                    whyDomain,
	"cors":                                "the gateway adds no CORS headers; handle CORS in the app (django-cors-headers, Flask-CORS)",
	"api_key_required":                    "the gateway checks no API keys on HTTP routes; check them in the app",
	"api_key":                             "the gateway checks no API keys on HTTP routes; check them in the app",
	"iam_authorization":                   "HTTP routes take no request signing (the Lambda Invoke API does, with SigV4); authenticate in the app",
	"authorization_type":                  "HTTP routes take no request signing (the Lambda Invoke API does, with SigV4); authenticate in the app",
	"authorizer":                          "no custom authorizers; authenticate in the app",
	"apigateway_description":              whyAPIGW,
	"apigateway_policy":                   whyAPIGW,
	"endpoint_configuration":              "no API Gateway endpoint types: the gateway listens on listen:",
	"http_methods":                        whyAPIGW + "; every method reaches the app",
	"parameter_depth":                     whyAPIGW + "; every path reaches the app",
	"integration_response_codes":          whyAPIGW,
	"method_response_codes":               whyAPIGW,
	"cache_cluster_enabled":               whyCache,
	"cache_cluster_size":                  whyCache,
	"cache_cluster_ttl":                   whyCache,
	"cache_cluster_encrypted":             whyCache,
	"payload_compression":                 "the gateway does not compress responses; compress in the app (e.g. Django's GZipMiddleware)",
	"payload_minimum_compression_size":    "the gateway does not compress responses; compress in the app (e.g. Django's GZipMiddleware)",
	"cloudwatch_log_level":                whyCW,
	"xray_tracing":                        "no X-Ray: Stoke records its own trace of each invocation (stoke trace)",
	"log_level":                           "sets the level of Zappa's handler logger; there is no Zappa handler (the app's logging is its own)",
	"debug":                               "Zappa's handler puts tracebacks in 500 responses; there is no Zappa handler: read errors with stoke logs",
	"exception_handler":                   "no exception hook: unhandled exceptions go to the function's log (stoke logs)",
	"context_header_mappings":             "no API Gateway context variables to copy into headers",
	"remote_env":                          "no S3 download at start: copy the file's variables into env",
	"tags":                                "no AWS resources to tag",
	"layers":                              "no Lambda layers: install their packages for the python interpreter",
	"lambda_handler":                      "Stoke serves the WSGI app with its own shim; a custom Lambda handler is not used",
	"settings_file":                       "a server-side settings file for Zappa's handler; there is no Zappa handler",
	"callbacks":                           "Zappa's deploy hooks; put a pre-deploy command in build:",
	"async_source":                        whyAsync,
	"async_resources":                     whyAsync,
	"async_response_table":                whyAsync,
	"async_response_table_read_capacity":  whyAsync,
	"async_response_table_write_capacity": whyAsync,
	"dead_letter_arn":                     "no dead-letter queues",
	"ephemeral_storage":                   "no /tmp size limit: instances use this machine's disk",
	"architecture":                        "instances run on this machine's CPU architecture",
	"snap_start":                          "Lambda SnapStart; Stoke's python-wsgi forks instances from an initialised template (snapshot: true, the default) instead",
	"function_url_enabled":                "no Lambda function URLs: the gateway's routes serve HTTP",
	"function_url_config":                 "no Lambda function URLs: the gateway's routes serve HTTP",
}

// render writes the config as YAML: a node tree, so every value is quoted
// as YAML needs and the output is the same for the same input.
func (m *mapper) render() ([]byte, error) {
	fn := mapping()
	add := func(key string, v *yaml.Node, comment string) {
		if comment != "" {
			v.LineComment = "# " + comment
		}
		fn.Content = append(fn.Content, str(key), v)
	}
	add("runtime", str("python-wsgi"), "")
	cwd, err := filepath.Rel(m.outDir, m.projectDir)
	if err != nil {
		cwd = m.projectDir // another volume: absolute is still right
	}
	add("cwd", str(escape(filepath.ToSlash(cwd))), "the directory of "+filepath.Base(m.file))
	if m.build != "" {
		add("build", str(m.build), "from prebuild_script")
	}
	add("python", str(escape(m.python)), pythonComment(m.pythonNote))
	if m.handler != "" {
		add("handler", str(m.handler), "from app_function")
	} else {
		add("django_settings", str(m.django), "")
	}
	add("memory", num(m.memory), sourceComment(m.s, "memory_size", "MB; Zappa's default memory_size"))
	add("timeout", str(fmtSeconds(m.timeout)), sourceComment(m.s, "timeout_seconds", "Zappa's default timeout_seconds"))
	add("keep_warm", num(m.keepWarm), sourceComment(m.s, "keep_warm", "Zappa's default keep_warm: true"))
	add("max_instances", num(m.maxInst), maxComment(m.s))
	if m.routes {
		add("routes", &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle, Content: []*yaml.Node{str("/*")}}, "every path, as API Gateway's {proxy+}")
	}
	if m.readinessPath != "" {
		r := mapping()
		r.Content = append(r.Content, str("path"), str(escape(m.readinessPath)))
		add("readiness", r, "")
	}
	if len(m.env) > 0 {
		env := mapping()
		names := make([]string, 0, len(m.env))
		for n := range m.env {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			env.Content = append(env.Content, str(n), str(escape(m.env[n])))
		}
		add("env", env, "")
	}

	nameKey := str(m.name)
	if m.description != "" {
		nameKey.HeadComment = comment([]string{"lambda_description: " + m.description})
	}
	top := mapping()
	if m.region != "" {
		top.Content = append(top.Content, str("region"), str(m.region))
	}
	top.Content = append(top.Content, str("functions"), &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{nameKey, fn}})
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{top}, HeadComment: m.header()}

	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("write YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write YAML: %w", err)
	}
	return buf.Bytes(), nil
}

// header is the comment at the top: where the file came from, then every
// key not carried over as is. Notes are sorted by then.
func (m *mapper) header() string {
	lines := []string{
		fmt.Sprintf("Generated by `stoke import zappa` from %s, stage %q.", filepath.Base(m.file), m.stage),
		"Docs: docs/zappa.md. Check the notes below, then: stoke serve -f <this file>",
	}
	sorted := append([]Note(nil), m.notes...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Key < sorted[j].Key })
	section := func(title string, kind Kind) {
		var items []string
		for _, n := range sorted {
			if n.Kind == kind {
				items = append(items, "  "+n.String())
			}
		}
		if len(items) > 0 {
			lines = append(lines, "", title)
			lines = append(lines, items...)
		}
	}
	section("Check (carried over with a difference):", Changed)
	section("Not imported (Stoke cannot honour these):", Unsupported)
	section("Unknown keys (ignored):", Unknown)
	return comment(lines)
}

// comment turns lines into a YAML comment, one "# " per line, so no user
// text (a description with a newline) can end the comment early.
func comment(lines []string) string {
	var out []string
	for _, l := range lines {
		for _, part := range strings.Split(l, "\n") {
			part = strings.TrimRight(strings.ReplaceAll(part, "\r", ""), " ")
			if part == "" {
				out = append(out, "#")
			} else {
				out = append(out, "# "+part)
			}
		}
	}
	return strings.Join(out, "\n")
}

func pythonComment(runtime string) string {
	if runtime == "" {
		return "the interpreter (a venv's python works too)"
	}
	return "Zappa's runtime was " + runtime + "; set a matching interpreter or venv python"
}

func sourceComment(s map[string]any, key, dflt string) string {
	if v, ok := s[key]; ok && v != nil {
		return key + ": " + compact(v)
	}
	return dflt
}

func maxComment(s map[string]any) string {
	if v, ok := s["lambda_concurrency"]; ok && v != nil {
		return "lambda_concurrency: " + compact(v)
	}
	return "Stoke's cap on concurrent instances; raise it for more traffic"
}

// escape doubles every $, since Stoke expands ${NAME} in config strings and
// a Zappa value is literal text.
func escape(s string) string { return strings.ReplaceAll(s, "$", "$$") }

func mapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode} }

// str is a string node; the explicit tag makes the encoder quote values
// YAML would read as something else ("012", "true", "null").
func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func num(n int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(n, 10)}
}

// WriteFile writes data to path, refusing to replace an existing file
// unless force: an import must not silently clobber a hand-edited config.
func WriteFile(path string, data []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s already exists; use --force to overwrite it", path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
