package main_test

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A Zappa project, end to end: `stoke import zappa` on examples/django-drf's
// zappa_settings.json, `stoke serve` of the result, real requests to the
// real Django + DRF, then a deploy of broken settings that must fail with
// the traceback and leave the working version serving.
func TestZappaDjangoEndToEnd(t *testing.T) {
	stokeBin, _ := build(t)
	dir := t.TempDir()
	proj := filepath.Join(dir, "django-drf")
	if out, err := exec.Command("cp", "-r", "../../examples/django-drf", proj).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	os.Remove(filepath.Join(proj, "db.sqlite3")) // one a local `make run` made
	migrate := exec.Command("/usr/bin/python3", "manage.py", "migrate", "--noinput")
	migrate.Dir = proj
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "stoke.yaml")
	out, err := exec.Command(stokeBin, "import", "zappa", filepath.Join(proj, "zappa_settings.json"),
		"--stage", "dev", "--python", "/usr/bin/python3", "-o", cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	gw, adm := freeAddr(t), freeAddr(t)
	imported, _ := os.ReadFile(cfg)
	// Lambda's 10 s init limit is a timing bound: on a shared, loaded
	// machine a template's Django import (stoke tune starts more) can take
	// longer, which is not what this test is about.
	imported = []byte(strings.Replace(string(imported), "    runtime: python-wsgi\n", "    runtime: python-wsgi\n    init_timeout: 2m\n", 1))
	local := "listen: " + gw + "\nadmin:\n  listen: " + adm + "\ndata_dir: data\ninvoke_api:\n  auth: none\n"
	if err := os.WriteFile(cfg, append([]byte(local), imported...), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startStoke(t, stokeBin, cfg, gw)
	defer func() {
		if s.cmd.ProcessState == nil {
			s.stop()
			for _, p := range procsIn(proj) {
				t.Errorf("python process left behind: %s", p)
			}
		}
	}()
	// The template's line is echoed from the function's log, which may
	// come after "stoke is serving": wait for it rather than read early.
	line := waitOut(t, s, "TEMPLATE django-drf-dev-1-template-1 ready") // the first sandbox id of the process
	if !strings.Contains(line, "python /usr/bin/python3 3.") || !strings.Contains(line, "(Django ") {
		t.Errorf("the template line does not name the interpreter and Django: %s", line)
	}

	resp, body := s.get("/api/notes/")
	if resp.StatusCode != 200 || body != "[]" {
		t.Fatalf("GET /api/notes/: %d %s", resp.StatusCode, body)
	}
	// keep_warm: 3 from the Zappa stage: three forked instances were ready
	// before the version took traffic.
	ls, err := s.cli("ls")
	if err != nil || strings.Count(ls, " idle ") < 3 || !strings.Contains(ls, "django-drf-dev: instances fork from template django-drf-dev-1-template-") ||
		!strings.Contains(ls, "python /usr/bin/python3 3.") {
		t.Errorf("stoke ls: %v\n%s", err, ls)
	}

	// What Zappa's handler got on Lambda, an API Gateway event through the
	// Invoke API, reaches the same WSGI app.
	ev := `{"version":"2.0","rawPath":"/api/notes/","requestContext":{"http":{"method":"GET","path":"/api/notes/"}},"headers":{"host":"example.com"}}`
	ir, err := http.Post("http://"+gw+"/2015-03-31/functions/django-drf-dev/invocations", "application/json", strings.NewReader(ev))
	if err != nil {
		t.Fatal(err)
	}
	ib, _ := io.ReadAll(ir.Body)
	ir.Body.Close()
	if ir.StatusCode != 200 || !strings.Contains(string(ib), `"statusCode":200`) || !strings.Contains(string(ib), `"body":"[]"`) {
		t.Errorf("Invoke API: %d %s", ir.StatusCode, ib)
	}

	// stoke tune runs a second template of the same version beside the live one.
	tuned, err := s.cli("tune", "django-drf-dev", "--memory", "128,512", "--cold", "2", "--invocations", "3", "--path", "/api/notes/")
	if err != nil || !strings.Contains(tuned, "128") || !strings.Contains(tuned, "512") {
		t.Errorf("tune: %v\n%s", err, tuned)
	}
	if resp, body := s.get("/api/notes/"); resp.StatusCode != 200 || body != "[]" {
		t.Errorf("live version after tune: %d %s", resp.StatusCode, body)
	}

	// A deploy says which interpreter (path, version, frameworks) runs the
	// new version.
	text, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(text), "DJANGO_LOG_LEVEL: DEBUG", "DJANGO_LOG_LEVEL: INFO", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := s.cli("deploy"); err != nil || !strings.Contains(out, "deployed  django-drf-dev version 2 (python /usr/bin/python3 3.") ||
		!strings.Contains(out, "(Django ") {
		t.Errorf("deploy of a new version does not name its interpreter: %v\n%s", err, out)
	}

	// Broken settings: the deploy fails with the traceback, nothing changes.
	if err := os.WriteFile(filepath.Join(proj, "mysite", "broken.py"), []byte("from mysite.settings import *\nimport no_such_module\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	text, _ = os.ReadFile(cfg)
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(text), "django_settings: mysite.settings", "django_settings: mysite.broken", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out2, err := s.cli("deploy")
	if err == nil {
		t.Fatalf("deploy of broken settings succeeded:\n%s", out2)
	}
	for _, want := range []string{"Runtime.ImportModuleError", "No module named 'no_such_module'", "(python: /usr/bin/python3 3.",
		"Traceback (most recent call last)", "previous version keeps serving"} {
		if !strings.Contains(out2, want) {
			t.Errorf("deploy error lacks %q:\n%s", want, out2)
		}
	}
	for i := 0; i < 5; i++ {
		if resp, body := s.get("/api/notes/"); resp.StatusCode != 200 || body != "[]" {
			t.Fatalf("after the failed deploy: %d %s", resp.StatusCode, body)
		}
	}
	inv, err := s.cli("invocations", "django-drf-dev")
	if err != nil || !strings.Contains(inv, "200") {
		t.Errorf("invocations: %v\n%s", err, inv)
	}
	s.stop()
	// The server has exited; its forks are gone once the kernel has reaped
	// them: poll for that, briefly, rather than sleep.
	for deadline := time.Now().Add(5 * time.Second); len(procsIn(proj)) > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	for _, p := range procsIn(proj) {
		t.Errorf("python process left behind: %s", p)
	}
	if strings.Contains(s.out.String(), "EOFError") {
		t.Errorf("a clean shutdown printed an EOFError traceback:\n%s", s.out)
	}
}

// waitOut waits until stoke's output has a line containing want, and
// returns that line.
func waitOut(t *testing.T, s *stokeProc, want string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		for _, l := range strings.Split(s.out.String(), "\n") {
			if strings.Contains(l, want) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in stoke's output:\n%s", want, s.out)
		}
	}
}

// procsIn lists live processes whose working directory is dir.
func procsIn(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err == nil && cwd == dir {
			cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			out = append(out, e.Name()+" "+strings.ReplaceAll(string(cmd[:min(len(cmd), 80)]), "\x00", " "))
		}
	}
	return out
}
