package zappa

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindPrefersZappasOrder(t *testing.T) {
	dir := t.TempDir()
	if _, err := Find(dir); err == nil || !strings.Contains(err.Error(), "zappa_settings.json, zappa_settings.toml, zappa_settings.yml, zappa_settings.yaml") {
		t.Errorf("empty dir: %v", err)
	}
	// Added in reverse order of preference: each new file wins.
	for _, name := range []string{"zappa_settings.yaml", "zappa_settings.yml", "zappa_settings.toml", "zappa_settings.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := Find(dir)
		if err != nil || filepath.Base(got) != name {
			t.Errorf("with %s present: Find = %s, %v", name, got, err)
		}
	}
}

func TestImportFormats(t *testing.T) {
	for _, tc := range []struct {
		name, file, body string
		format           Format
		keepWarm, memory int
	}{
		{"TOML", "zappa_settings.toml", "[dev]\napp_function = \"app.app\"\nkeep_warm = false\nmemory_size = 1024\n", TOML, 0, 1024},
		{"TOML float memory", "zappa_settings.toml", "[dev]\napp_function = \"app.app\"\nmemory_size = 1024.0\n", TOML, 1, 1024},
		// PyYAML reads YAML 1.1: no and off are false there.
		{"YAML 1.1 no", "zappa_settings.yml", "dev:\n  app_function: app.app\n  keep_warm: no\n", YAML, 0, 512},
		{"YAML 1.1 Off", "zappa_settings.yaml", "dev:\n  app_function: app.app\n  keep_warm: Off\n", YAML, 0, 512},
		{"YAML anchors and merge keys", "zappa_settings.yml",
			"base: &base\n  app_function: app.app\n  memory_size: 256\ndev:\n  <<: *base\n  keep_warm: 2\n", YAML, 2, 256},
		{"Hjson comments and trailing commas", "zappa_settings.json",
			"{\n  // the dev stage\n  \"dev\": {\n    \"app_function\": \"app.app\", # Zappa reads this\n    \"keep_warm\": 3,\n  },\n}\n", HJSON, 3, 512},
		{"unknown extension reads as JSON, as Zappa does", "settings.txt", `{"dev": {"app_function": "app.app"}}`, JSON, 1, 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeSettings(t, "proj", tc.file, tc.body)
			stage := ""
			if strings.Contains(tc.body, "base") {
				stage = "dev"
			}
			r, fn, _ := run(t, p, stage)
			if r.Format != tc.format || fn.KeepWarm != tc.keepWarm || fn.Memory != tc.memory {
				t.Errorf("format %s keep_warm %d memory %d; want %s %d %d", r.Format, fn.KeepWarm, fn.Memory, tc.format, tc.keepWarm, tc.memory)
			}
			if tc.format == HJSON {
				wantNote(t, r, "(file)", Changed, "read as Hjson")
			}
		})
	}
}

func TestImportFormatErrors(t *testing.T) {
	for _, tc := range []struct{ name, file, body, want string }{
		{"TOML syntax names line and column", "zappa_settings.toml", "[dev]\napp_function = \"app.app\"\nkeep_warm = \n",
			"zappa_settings.toml:3:13: invalid TOML: "},
		{"YAML syntax", "zappa_settings.yml", "dev:\n  app_function: app.app\n   memory_size: 3\n", "zappa_settings.yml: invalid YAML: line 3"},
		{"empty YAML", "zappa_settings.yml", "", "empty file"},
		{"YAML list at the top", "zappa_settings.yml", "- dev\n", "expected a mapping of stages"},
		// Zappa's check_environment refuses these; Lambda refuses the other.
		{"env values not strings (YAML)", "zappa_settings.yml",
			"dev:\n  app_function: app.app\n  environment_variables:\n    DEBUG: yes\n    PORT: 8000\n    NAME: ok\n",
			`environment_variables: values that are not strings: DEBUG (true), PORT (8000); Zappa refuses them too ("The following environment variables are not strings: DEBUG, PORT"). Quote them`},
		{"aws env value not a string (JSON)", "zappa_settings.json",
			`{"dev": {"app_function": "app.app", "aws_environment_variables": {"NESTED": {"a": 1}}}}`,
			"aws_environment_variables: values that are not strings: NESTED (a mapping); Lambda refuses them too"},
		{"TOML date as env value", "zappa_settings.toml", "[dev]\napp_function = \"app.app\"\n[dev.environment_variables]\nSINCE = 2024-01-02\n",
			"SINCE (the date 2024-01-02"},
		{"non-web stage with lambda_handler", "zappa_settings.json", `{"worker": {"lambda_handler": "tasks.handler", "events": [{"function": "tasks.run", "expression": "rate(1 hour)"}]}}`,
			`stage "worker" is not a web app: it has no app_function or django_settings, only lambda_handler, events`},
		{"app_function names a file", "zappa_settings.json", `{"dev": {"app_function": "app.py"}}`, `"app.py" names a file, not a function; it should be like app.app`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeSettings(t, "proj", tc.file, tc.body)
			_, err := Import(p, mustRead(t, p), Options{Output: filepath.Join(t.TempDir(), "stoke.yaml")})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v\nwant an error containing %q", err, tc.want)
			}
		})
	}
}

func TestSlugifyAsZappa(t *testing.T) {
	for in, want := range map[string]string{
		"My Project_dir":         "my-project-dir",
		"Café Déjà-vu":           "cafe-deja-vu",
		"it's":                   "it-s",
		"1,000 things":           "1000-things",
		"--a--b--":               "a-b",
		"alexa-madlib-generator": "alexa-madlib-generator",
	} {
		if got := slugify(in); got != want {
			t.Errorf("slugify(%q) = %q, want %q", in, got, want)
		}
	}
	// get_project_name cuts the slug to 15 characters, which can end in
	// '-'; the function name's slugify then drops it.
	for dir, want := range map[string]string{
		"alexa-madlib-generator": "alexa-madlib-ge",
		"abcdefghijklmn-xyz":     "abcdefghijklmn-",
		"short":                  "short",
	} {
		if got := projectNameFromDir("/src/" + dir); got != want {
			t.Errorf("projectNameFromDir(%q) = %q, want %q", dir, got, want)
		}
	}
	p := writeSettings(t, "abcdefghijklmn-xyz", "zappa_settings.json", `{"dev": {"app_function": "app.app"}}`)
	if r, _, _ := run(t, p, ""); r.Function != "abcdefghijklmn-dev" {
		t.Errorf("function %q, want abcdefghijklmn-dev", r.Function)
	}
}
