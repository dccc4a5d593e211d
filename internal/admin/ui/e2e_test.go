package ui_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/stokehq/stoke/internal/admin/ui"
	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
	"github.com/stokehq/stoke/internal/server"
)

// The test binary doubles as the function's app, and as the sandbox's stub
// process, as bin/stoke does.
func TestMain(m *testing.M) {
	sandbox.MaybeRunStub()
	if os.Getenv("STOKE_UI_APP") == "1" {
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Println("app saw", r.URL.Path)
			fmt.Fprintf(w, "hello %s", r.URL.Path)
		})
		_ = http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil)
		return
	}
	os.Exit(m.Run())
}

// startStoke runs a real Stoke whose function f is this test binary,
// scaled to zero, so the first request is a cold start.
func startStoke(t *testing.T) *server.Server {
	t.Helper()
	sandboxtest.CheckNoLeaks(t)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: "127.0.0.1:0"}
functions:
  f:
    runtime: http
    command: [%q]
    memory: 256
    keep_warm: 0
    routes: [/f, /f/*]
    env: {STOKE_UI_APP: "1"}
  py:
    runtime: python-wsgi
    handler: app:app
    python: /usr/bin/python3
    routes: [/py]
`, os.Args[0])
	app := "def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'py']\n"
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "stoke.yaml")
	cfg, err := config.Parse(path, []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.Start(context.Background(), cfg, []byte(yaml), server.Options{Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}

// The API takes the login cookie as it takes the bearer token, and the
// dashboard is mounted on the same listener.
func TestAPIAcceptsLoginCookie(t *testing.T) {
	s := startStoke(t)
	get := func(path string, c *http.Cookie) *http.Response {
		req, _ := http.NewRequest("GET", "http://"+s.AdminAddr()+path, nil)
		if c != nil {
			req.AddCookie(c)
		}
		resp, err := http.DefaultTransport.RoundTrip(req) // no redirects followed
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, p := range []string{"/v1/functions", "/v1/cost", "/metrics"} {
		if r := get(p, &http.Cookie{Name: ui.CookieName, Value: "wrong"}); r.StatusCode != 401 {
			t.Errorf("%s with a wrong cookie: %d", p, r.StatusCode)
		}
		if r := get(p, &http.Cookie{Name: ui.CookieName, Value: s.Token()}); r.StatusCode != 200 {
			t.Errorf("%s with the login cookie: %d", p, r.StatusCode)
		}
	}
	if r := get("/", nil); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
		t.Errorf("GET / without login: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	if r := get("/", &http.Cookie{Name: ui.CookieName, Value: s.Token()}); r.StatusCode != 200 {
		t.Errorf("GET / logged in: %d", r.StatusCode)
	}

	// A cross-site form post cannot use the cookie to deploy.
	req, _ := http.NewRequest("POST", "http://"+s.AdminAddr()+"/v1/deploy", strings.NewReader(`{}`))
	req.AddCookie(&http.Cookie{Name: ui.CookieName, Value: s.Token()})
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site deploy: %d", resp.StatusCode)
	}
}

// chromium finds the browser, or fails saying how to install it: a missing
// browser must not pass silently.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("STOKE_SKIP_BROWSER") == "1" {
		t.Skip("STOKE_SKIP_BROWSER=1: not running the browser tests")
	}
	t.Fatal("chromium is not installed: run .ci/run (its install step: apt-get update && apt-get install -y chromium), or set STOKE_SKIP_BROWSER=1 to skip the browser tests")
	return ""
}

func artifacts(t *testing.T) string {
	dir := os.Getenv("STOKE_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, "dashboard")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDashboardE2E drives a real headless Chromium through the dashboard of
// a real Stoke: login (wrong token, then the right one), the functions
// list, a cold start appearing live on the function page, its trace, and
// the cost page. Screenshots of each page are saved as artefacts.
func TestDashboardE2E(t *testing.T) {
	browser := chromium(t)
	s := startStoke(t)
	shots := artifacts(t)
	admin := "http://" + s.AdminAddr()

	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(browser),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	defer cancel()
	// The first action starts the browser, which lives as long as that
	// action's context: start it without a deadline, then bound the rest.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting %s: %v", browser, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG; less is JPEG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(shots, name+".png")
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}
	visible := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.WaitVisible(chromedp.CSS(sel)) }

	// Not logged in: the dashboard sends us to the login page.
	do("opening the dashboard", chromedp.Navigate(admin+"/"), visible("#token"))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.Contains(loc, "/login") {
		t.Fatalf("not logged in, / showed %s", loc)
	}
	do("logging in with a wrong token",
		chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"),
		chromedp.Submit(chromedp.CSS("#token")),
		visible("#login-error"))
	if msg := text("#login-error"); !strings.Contains(msg, "not the admin token") {
		t.Errorf("wrong token: error %q", msg)
	}
	shot("1-login-wrong-token")

	do("logging in",
		chromedp.SendKeys(chromedp.CSS("#token"), s.Token()),
		chromedp.Submit(chromedp.CSS("#token")),
		visible(`#functions tbody tr[data-function="f"]`))
	cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil || strings.Contains(cookies, s.Token()) {
		t.Errorf("the token is readable from the page's script (cookie not HttpOnly): %q %v", cookies, err)
	}
	if row := text(`#functions tbody tr[data-function="f"]`); !strings.Contains(row, "http") || !strings.Contains(row, "256 MB") || !strings.Contains(row, "/f/*") {
		t.Errorf("functions row: %q", row)
	}
	shot("2-functions")

	// Phone width: the same page, tables as cards.
	do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	shot("2b-functions-phone")
	do("desktop width", chromedp.EmulateReset(), chromedp.EmulateViewport(1280, 900))

	// The function page, open before the request: the cold start must show
	// up without a reload.
	do("opening the function page",
		chromedp.Click(chromedp.CSS(`#functions a[href="/functions/f"]`)),
		visible(`#invocations tbody td.empty`))
	sent := time.Now()
	resp, err := http.Get("http://" + s.GatewayAddr() + "/f/hello")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Header.Get("X-Stoke-Cold") != "true" {
		t.Fatalf("the first request was not cold: %v", resp.Header)
	}
	answered := time.Now()
	do("seeing the cold start", visible(`#invocations tbody tr[data-cold="true"]`))
	t.Logf("the cold start showed %v after its response (%v after the request)", time.Since(answered).Round(time.Millisecond), time.Since(sent).Round(time.Millisecond))
	if d := time.Since(answered); d > 3*time.Second {
		t.Errorf("the cold start took %v to show", d)
	}
	initMS := text(`#invocations tbody tr[data-cold="true"] td.init`)
	if v, err := strconv.ParseFloat(strings.ReplaceAll(initMS, ",", ""), 64); err != nil || v <= 0 {
		t.Errorf("init ms of the cold start: %q", initMS)
	}
	if row := text(`#invocations tbody tr[data-cold="true"]`); !strings.Contains(row, "cold") || !strings.Contains(row, "200") || !strings.Contains(row, "/f/hello") {
		t.Errorf("cold row: %q", row)
	}
	// The instance it started, and the log, live.
	do("seeing the instance", visible(`#instances tbody .state-idle`))
	waitText(t, ctx, "#log", "REPORT RequestId:")
	if l := text("#log"); !strings.Contains(l, "app saw /f/hello") || !strings.Contains(l, "Init Duration") {
		t.Errorf("log: %q", l)
	}
	// A warm one next to it, so the filter has something to hide.
	resp, err = http.Get("http://" + s.GatewayAddr() + "/f/again")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	do("seeing the warm one", visible(`#invocations tbody tr[data-cold="false"]`))
	waitText(t, ctx, "#log", "app saw /f/again")
	shot("3-function")
	do("filtering to cold starts",
		chromedp.Click(chromedp.CSS("#cold-only")),
		chromedp.WaitNotPresent(chromedp.CSS(`#invocations tbody tr[data-cold="false"]`)),
		visible(`#invocations tbody tr[data-cold="true"]`))

	// Its trace: the waterfall, or the empty state while traces are not
	// stored (an older server, or the trace aged out).
	do("opening the trace",
		chromedp.Click(chromedp.CSS(`#invocations tbody tr[data-cold="true"] a`)),
		visible(`#waterfall-table, #trace-empty`))
	hasWaterfall, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector("#waterfall-table")`))
	if err != nil {
		t.Fatal(err)
	}
	if hasWaterfall {
		wf := text("#waterfall-table")
		for _, span := range []string{"gateway", "queue", "init", "invoke"} {
			if !strings.Contains(wf, span) {
				t.Errorf("waterfall of a cold start without %s:\n%s", span, wf)
			}
		}
	} else {
		t.Logf("no stored trace: the trace page shows its empty state")
	}
	shot("4-trace")

	do("opening the cost page",
		chromedp.Click(chromedp.CSS(`.top nav a[href="/cost"]`)),
		visible(`#cost tbody tr[data-function="f"]`),
		visible(`#tune .tune-item[data-function="f"]`))
	if row := text(`#cost tbody tr[data-function="f"]`); !strings.Contains(row, "256 MB") || !strings.Contains(row, "$") {
		t.Errorf("cost row: %q", row)
	}
	if total := text("#cost-total"); !strings.HasPrefix(total, "$") {
		t.Errorf("cost total: %q", total)
	}
	shot("5-cost")

	// A `stoke tune` run, then its chart and recommendation on the page.
	if tuneRun(t, s) {
		do("reloading the cost page",
			chromedp.Navigate(admin+"/cost"),
			visible(`#tune .tune-item[data-function="f"] .recommendation`),
			visible(`#tune .tune-item[data-function="f"] .uplot`))
		if rec := text(`#tune .tune-item[data-function="f"] .recommendation`); !strings.Contains(rec, " MB") {
			t.Errorf("tune recommendation: %q", rec)
		}
		shot("6-cost-tuned")
	}
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	}); err != nil {
		t.Fatal(err)
	}
	shot("5b-cost-dark")

	// A python-wsgi function's page shows its template apart from its instances.
	do("opening the python function",
		chromedp.Navigate(admin+"/functions/py"),
		visible(`#summary .snapshot`))
	if sn := text(`#summary .snapshot`); !strings.Contains(sn, "instances fork from template py-1-template-") || !strings.Contains(sn, " ms, ") {
		t.Errorf("template line: %q", sn)
	}
}

// tuneRun runs a small `stoke tune` of f through the admin API, as the CLI
// does; false when this server has no tune route yet.
func tuneRun(t *testing.T, s *server.Server) bool {
	t.Helper()
	plan := `{"memory_mb":[128,256],"cold":1,"invocations":3,"method":"GET","path":"/f/tune","cold_rate":0.01,"strategy":"cost"}`
	req, _ := http.NewRequest("POST", "http://"+s.AdminAddr()+"/v1/functions/f/tune", strings.NewReader(plan))
	req.Header.Set("Authorization", "Bearer "+s.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		t.Logf("no tune route: the cost page's tune section stays empty")
		return false
	}
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"result"`) {
		t.Fatalf("tune: %d %s", resp.StatusCode, body)
	}
	return true
}

// waitText waits until sel's text contains want (live content, no reload).
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		if strings.Contains(s, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never showed %q; it shows:\n%s", sel, want, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
