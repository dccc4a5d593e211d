package wsgirt

import (
	"context"
	"strings"
	"testing"
)

// The warm-up request must reach the app's views: a Django project lists
// its real hosts in ALLOWED_HOSTS, and a warm-up sent with Host: localhost
// would get 400 DisallowedHost, pass readiness and warm nothing.
func TestWarmupUsesAnAllowedHost(t *testing.T) {
	for _, tc := range []struct {
		name, hosts, want string
	}{
		{"first exact entry", `["*.invalid", ".example.org", "api.example.com", "other.example.com"]`, "api.example.com"},
		{"a subdomain pattern's domain", `[".example.org"]`, "example.org"},
		{"wildcard only: localhost", `["*"]`, "localhost"},
		{"readiness.host wins", `["api.example.com", "admin.example.com"]`, "admin.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := djangoFunction(t, true)
			f.Cwd = brokenDjango(t, "from mysite.settings import *\nALLOWED_HOSTS = "+tc.hosts+"\n")
			f.Python.DjangoSettings = "mysite.broken_settings"
			if strings.HasPrefix(tc.name, "readiness.host") {
				f.Readiness.Host = tc.want
			}
			l := &logs{}
			rt := newRuntime(t, f, l)
			if err := rt.Prepare(context.Background()); err != nil {
				t.Fatal(err)
			}
			l.waitFor(t, "(GET /api/health, Host "+tc.want+" → 200)")
			snap, _ := rt.Snapshot()
			if snap.Warning != "" || !strings.Contains(snap.Interpreter, "(Django ") {
				t.Errorf("snapshot warning %q interpreter %q", snap.Warning, snap.Interpreter)
			}
			// A fork re-serves the warm-up request (init boost): with the
			// same host, so no instance logs "Invalid HTTP_HOST header"
			// (TestWarmupRefusedIsALoudWarning sees that line when it is).
			in := start(t, rt, "a")
			if err := in.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(l.String(), "Invalid HTTP_HOST") || strings.Contains(l.String(), "WARNING") {
				t.Errorf("the log has a refused warm-up:\n%s", l)
			}
		})
	}
}

// A warm-up the app refuses (4xx) passes readiness, as Zappa's touch does,
// but loudly: the warning names the reason the app logged.
func TestWarmupRefusedIsALoudWarning(t *testing.T) {
	f := djangoFunction(t, true)
	// DEBUG off and no ALLOWED_HOSTS: Django refuses every host.
	f.Cwd = brokenDjango(t, "from mysite.settings import *\nDEBUG = False\nALLOWED_HOSTS = []\n")
	f.Python.DjangoSettings = "mysite.broken_settings"
	l := &logs{}
	rt := newRuntime(t, f, l)
	if err := rt.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "warm-up request GET /api/health (Host: localhost) answered 400 Bad Request: django.security.DisallowedHost: Invalid HTTP_HOST header: 'localhost'."
	l.waitFor(t, "WARNING "+want)
	snap, _ := rt.Snapshot()
	for _, s := range []string{want, "the snapshot warmed almost nothing", "set readiness.host"} {
		if !strings.Contains(snap.Warning, s) {
			t.Errorf("snapshot warning lacks %q: %s", s, snap.Warning)
		}
	}
	// Each fork's re-warm is refused the same way, and its log says so.
	start(t, rt, "a")
	l.waitFor(t, "a stderr: Invalid HTTP_HOST header: 'localhost'")
}
