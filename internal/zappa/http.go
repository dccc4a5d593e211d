package zappa

import (
	"fmt"
	"strings"

	"github.com/stokehq/stoke/internal/config"
)

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

// misc maps the interpreter, the prebuild script and the description.
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
