package zappa

import (
	"fmt"
	"strings"

	"github.com/stokehq/stoke/internal/lambdaspec"
)

// environment merges environment_variables and aws_environment_variables.
// Zappa's handler copies environment_variables into os.environ when it
// starts, over the Lambda environment where aws_environment_variables live,
// so on a conflict the app sees environment_variables: so does this.
//
// Values must be strings, as for Zappa: it refuses a stage whose
// environment_variables hold anything else ("The following environment
// variables are not strings"), and Lambda refuses such
// aws_environment_variables. So the import refuses them too, rather than
// guess how a number or a boolean was meant to be spelled.
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
			return m.errf(key, "expected a mapping of NAME: value, got %s", describe(v))
		}
		var notStrings, names []string
		for _, n := range sortedKeys(obj) {
			if _, ok := obj[n].(string); !ok {
				notStrings = append(notStrings, fmt.Sprintf("%s (%s)", n, describe(obj[n])))
				names = append(names, n)
			}
		}
		if len(notStrings) > 0 {
			who := "Zappa refuses them too (\"The following environment variables are not strings: " + strings.Join(names, ", ") + "\")"
			if key == "aws_environment_variables" {
				who = "Lambda refuses them too (its environment variables are strings)"
			}
			return m.errf(key, "values that are not strings: %s; %s. Quote them, e.g. \"8000\" or \"true\"", strings.Join(notStrings, ", "), who)
		}
		var skipped []string
		for _, n := range sortedKeys(obj) {
			val := obj[n].(string)
			switch {
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
