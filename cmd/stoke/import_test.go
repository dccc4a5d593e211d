package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stokehq/stoke/internal/config"
)

// runStoke runs the built binary and returns stdout and stderr apart, since
// import writes the config to one and the notes to the other.
func runStoke(t *testing.T, bin, dir string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// TestImportZappaCommand runs the real binary on a Django project's
// zappa_settings.json, the way a user moving off Zappa would.
func TestImportZappaCommand(t *testing.T) {
	bin, _ := build(t)
	root := t.TempDir()
	proj := filepath.Join(root, "mysite")
	if err := os.MkdirAll(proj, 0o755); err != nil {
		t.Fatal(err)
	}
	settings := mustRead(t, "../../internal/zappa/testdata/django_settings.json")
	if err := os.WriteFile(filepath.Join(proj, "zappa_settings.json"), []byte(settings), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "stoke.yaml")

	stdout, stderr, err := runStoke(t, bin, root, "import", "zappa", "mysite/zappa_settings.json", "--stage", "prod", "-o", "stoke.yaml")
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	if stdout != "" {
		t.Errorf("with -o nothing goes to stdout, got %q", stdout)
	}
	for _, want := range []string{
		`Imported stage "prod" of mysite/zappa_settings.json (read as JSON) as function mysite-prod, written to stoke.yaml.`,
		"Not imported (Stoke cannot honour these):",
		"  vpc_config: no VPCs: instances run on this machine's network",
		"  keep_warm_expression: Stoke keeps instances warm continuously; there is no schedule to set",
		"  keep_warm: keep_warm: 3",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	cfg, err := config.Load(out)
	if err != nil {
		t.Fatalf("written config does not parse: %v\n%s", err, mustRead(t, out))
	}
	fn := cfg.Functions["mysite-prod"]
	if fn == nil || fn.Cwd != proj || fn.KeepWarm != 3 || fn.Memory != 256 || fn.Python.DjangoSettings != "mysite.settings" {
		t.Fatalf("function %+v\n%s", fn, mustRead(t, out))
	}
	if !strings.Contains(mustRead(t, out), "    cwd: mysite ") {
		t.Errorf("cwd should be relative to the output file:\n%s", mustRead(t, out))
	}
	// The stage's environment often holds secrets: the file is the user's only.
	if fi, err := os.Stat(out); err != nil || (len(fn.Env) > 0) != (fi.Mode().Perm() == 0o600) {
		t.Errorf("written config with %d env variables has mode %v (%v)", len(fn.Env), fi.Mode(), err)
	}
	first := mustRead(t, out)

	// An existing file is kept unless --force.
	_, stderr, err = runStoke(t, bin, root, "import", "zappa", "mysite/zappa_settings.json", "--stage", "dev", "-o", "stoke.yaml")
	if err == nil || !strings.Contains(stderr, "stoke.yaml already exists; use --force to overwrite it") {
		t.Errorf("overwrite without --force: %v\n%s", err, stderr)
	}
	if mustRead(t, out) != first {
		t.Error("the existing file changed without --force")
	}
	_, stderr, err = runStoke(t, bin, root, "import", "zappa", "mysite/zappa_settings.json", "--stage", "dev", "-o", "stoke.yaml", "--force")
	if err != nil {
		t.Fatalf("--force: %v\n%s", err, stderr)
	}
	if cfg, err := config.Load(out); err != nil || cfg.Functions["mysite-dev"] == nil {
		t.Errorf("--force did not write the dev stage: %v\n%s", err, mustRead(t, out))
	}

	// Without -o: the config on stdout, the notes on stderr; the default
	// settings file is ./zappa_settings.json.
	stdout, stderr, err = runStoke(t, bin, proj, "import", "zappa", "--stage", "dev")
	if err != nil {
		t.Fatalf("to stdout: %v\n%s", err, stderr)
	}
	if _, err := config.Parse(filepath.Join(proj, "stoke.yaml"), []byte(stdout)); err != nil {
		t.Errorf("stdout is not a valid config: %v\n%s", err, stdout)
	}
	if strings.Contains(stdout, "Imported stage") || !strings.Contains(stderr, "written to stdout") {
		t.Errorf("notes belong on stderr only:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}

	// Errors: several stages and no --stage; bad JSON with its position.
	_, stderr, err = runStoke(t, bin, proj, "import", "zappa")
	if err == nil || !strings.Contains(stderr, "has 4 stages (base, dev, prod, prod_eu); choose one with --stage") {
		t.Errorf("ambiguous stage: %v\n%s", err, stderr)
	}
	os.WriteFile(filepath.Join(root, "bad.json"), []byte("{\n  \"dev\": {\"app_function\": \"app.app\"]\n}\n"), 0o644)
	_, stderr, err = runStoke(t, bin, root, "import", "zappa", "bad.json")
	if err == nil || !strings.Contains(stderr, "bad.json:2:36: invalid JSON") || !strings.Contains(stderr, "Zappa's Hjson reading fails too") {
		t.Errorf("bad JSON: %v\n%s", err, stderr)
	}
	// Without a file argument the command takes what Zappa would: here
	// only a TOML file, and no settings at all in an empty directory.
	empty := t.TempDir()
	_, stderr, err = runStoke(t, bin, empty, "import", "zappa")
	if err == nil || !strings.Contains(stderr, "no Zappa settings in "+empty+" (looked for zappa_settings.json, zappa_settings.toml, zappa_settings.yml, zappa_settings.yaml") {
		t.Errorf("no settings: %v\n%s", err, stderr)
	}
	os.WriteFile(filepath.Join(empty, "zappa_settings.toml"), []byte("[dev]\napp_function = \"app.app\"\n"), 0o644)
	stdout, stderr, err = runStoke(t, bin, empty, "import", "zappa", "--no-check")
	if err != nil || !strings.Contains(stderr, "of zappa_settings.toml (read as TOML)") || !strings.Contains(stdout, "handler: app:app") {
		t.Errorf("TOML found by default: %v\n%s\n%s", err, stdout, stderr)
	}
}

// TestImportZappaChecksTheApp imports a real Django project (the example)
// and checks with the interpreter that its settings import, then points
// the import at a project whose module is missing: the warning names the
// interpreter and carries the traceback.
func TestImportZappaChecksTheApp(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	bin, _ := build(t)
	root := t.TempDir()
	proj := filepath.Join(root, "notes-api")
	if err := os.CopyFS(proj, os.DirFS("../../examples/django-drf")); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := runStoke(t, bin, proj, "import", "zappa", "--stage", "dev", "-o", "stoke.yaml", "--python", "/usr/bin/python3")
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "django-drf-dev: Django settings mysite.settings imports with /usr/bin/python3 3.") || !strings.Contains(stderr, "(Django ") {
		t.Errorf("no check report naming the interpreter and Django:\n%s", stderr)
	}
	// stoke check runs the same import later, from the written config.
	out, stderr, err := runStoke(t, bin, proj, "check", "-f", "stoke.yaml")
	if err != nil || !strings.Contains(out, "django-drf-dev: Django settings mysite.settings imports with /usr/bin/python3 3.") ||
		!strings.Contains(out, "stoke.yaml: OK") {
		t.Errorf("stoke check of the imported config: %v\n%s%s", err, out, stderr)
	}
	os.WriteFile(filepath.Join(proj, "zappa_settings.json"), []byte(`{"dev": {"app_function": "missing_module.app"}}`), 0o644)
	_, stderr, err = runStoke(t, bin, proj, "import", "zappa", "-o", "stoke.yaml", "--force", "--python", "/usr/bin/python3")
	if err != nil {
		t.Fatalf("a failed check is a warning, not a failed import: %v\n%s", err, stderr)
	}
	for _, want := range []string{"warning: notes-api-dev: the app does not import with /usr/bin/python3 3.",
		"Runtime.ImportModuleError: ModuleNotFoundError: No module named 'missing_module'", "Traceback (most recent call last):"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	// A config whose app does not import fails stoke check (exit 1), with
	// the interpreter and the traceback.
	out, stderr, err = runStoke(t, bin, proj, "check", "-f", "stoke.yaml")
	if err == nil || !strings.Contains(out, "warning: notes-api-dev: the app does not import with /usr/bin/python3 3.") ||
		!strings.Contains(out, "No module named 'missing_module'") || !strings.Contains(stderr, "stoke.yaml: 1 problem(s)") {
		t.Errorf("stoke check of an app that does not import: %v\n%s%s", err, out, stderr)
	}
}

func TestImportZappaHelp(t *testing.T) {
	bin, _ := build(t)
	out, err := exec.Command(bin, "import", "zappa", "--help").CombinedOutput()
	for _, want := range []string{"Usage:", "stoke import zappa [SETTINGS_FILE] [flags]", "--stage", "--force", "-o, --output",
		"stoke import zappa zappa_settings.json --stage dev -o stoke.yaml", "docs/zappa.md"} {
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("stoke import zappa --help lacks %q: %v\n%s", want, err, out)
		}
	}
	out, err = exec.Command(bin, "import", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "zappa       Turn a Zappa project's zappa_settings (.json, .toml, .yml, .yaml) into a stoke.yaml") {
		t.Errorf("stoke import --help: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "import") {
		t.Errorf("stoke --help does not list import: %v\n%s", err, out)
	}
}
