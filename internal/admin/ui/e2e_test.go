package ui_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/stokehq/stoke/internal/admin/ui"
	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
	"github.com/stokehq/stoke/internal/server"
	"github.com/stokehq/stoke/internal/server/servertest"
)

// The test binary doubles as the function's app, and as the sandbox's stub
// process, as bin/stoke does.
func TestMain(m *testing.M) {
	sandbox.MaybeRunStub()
	servertest.MaybeRunHelloApp("STOKE_UI_APP")
	sandboxtest.InOwnMountNamespace()
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
    # A response cache (its page shows it), never asked: f's traces and
    # records stay those of a function without one.
    cache: {max_bytes: 8MB}
`, sandboxtest.InDir(t, dir))
	app := "def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'py']\n"
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	return servertest.Serve(t, dir, yaml)
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
	// Log in as the login page does: the cookie is a session id.
	form := url.Values{"token": {s.Token()}}
	lresp, err := http.DefaultTransport.RoundTrip(func() *http.Request {
		req, _ := http.NewRequest("POST", "http://"+s.AdminAddr()+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}())
	if err != nil {
		t.Fatal(err)
	}
	lresp.Body.Close()
	var session *http.Cookie
	for _, c := range lresp.Cookies() {
		if c.Name == ui.CookieName {
			session = c
		}
	}
	if session == nil || strings.Contains(session.Value, s.Token()) {
		t.Fatalf("login: %d, session cookie %v", lresp.StatusCode, session)
	}
	for _, p := range []string{"/v1/functions", "/v1/cost", "/metrics"} {
		for _, wrong := range []string{"wrong", s.Token()} { // the token is not a session
			if r := get(p, &http.Cookie{Name: ui.CookieName, Value: wrong}); r.StatusCode != 401 {
				t.Errorf("%s with cookie %q: %d", p, wrong, r.StatusCode)
			}
		}
		if r := get(p, session); r.StatusCode != 200 {
			t.Errorf("%s with the login cookie: %d", p, r.StatusCode)
		}
	}
	if r := get("/", nil); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
		t.Errorf("GET / without login: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	if r := get("/", session); r.StatusCode != 200 {
		t.Errorf("GET / logged in: %d", r.StatusCode)
	}

	// A cross-site form post cannot use the cookie to deploy.
	req, _ := http.NewRequest("POST", "http://"+s.AdminAddr()+"/v1/deploy", strings.NewReader(`{}`))
	req.AddCookie(session)
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

	bctx, ctx := newBrowser(t, browser)

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			// What the page showed, for the failure's reader: the URL, the
			// page's text and a screenshot (a fresh context: ctx may be spent).
			dctx, cancel := context.WithTimeout(bctx, 10*time.Second)
			defer cancel()
			loc, _ := chromedp.Run(dctx, chromedp.Location())
			body, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 2000) : ""`))
			if buf, err := chromedp.Run(dctx, chromedp.FullScreenshot(100)); err == nil {
				_ = os.WriteFile(filepath.Join(shots, "failed.png"), buf, 0o644)
			}
			t.Fatalf("%s: %v\nat %s, the page reads:\n%s", what, err, loc, body)
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
	// up without a reload. With nothing recorded the chart says so.
	// The row links to the function's page; open it by its address (the
	// table is redrawn every second, so a click can land between redraws).
	if href := eval[string](t, ctx, `document.querySelector('#functions a[href="/functions/f"]')?.getAttribute("href") || ""`); href != "/functions/f" {
		t.Fatalf("the functions table does not link f's page: %q", href)
	}
	do("opening the function page",
		chromedp.Navigate(admin+"/functions/f"),
		visible(`#invocations tbody td.empty`),
		visible(`#latency-empty`))
	if hidden := eval[bool](t, ctx, `document.getElementById("latency-chart").hidden`); !hidden {
		t.Error("an empty chart is drawn instead of its empty state")
	}
	// The log and the latest invocations come first, the chart and the
	// instances after them.
	if order := eval[string](t, ctx, `["log", "invocations", "latency-h", "instances"].map((id) => document.getElementById(id).getBoundingClientRect().top).join(",")`); !increasing(order) {
		t.Errorf("section tops (log, invocations, chart, instances) = %s, want that order", order)
	}
	if top := eval[float64](t, ctx, `document.getElementById("log").getBoundingClientRect().top`); top > 600 {
		t.Errorf("the log starts %v px down the page; it should be in the first screen", top)
	}
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
	// The instance it started, and the log, live, each line with its time.
	do("seeing the instance", visible(`#instances tbody .state-idle`))
	// What the keep-alive policy (adaptive, the default) decided for it.
	if ka := text(`#summary .keep-alive`); !strings.Contains(ka, "keep_alive adaptive: idle kept ") || !strings.Contains(ka, "(scale-out ") ||
		!strings.Contains(ka, "0 pre-warms") || !strings.Contains(ka, "0 evictions") || !regexp.MustCompile(`[\d.]+ GB-s idle`).MatchString(ka) {
		t.Errorf("keep-alive in the summary: %q", ka)
	}
	waitText(t, ctx, "#log", "REPORT RequestId:")
	if l := text("#log"); !strings.Contains(l, "app saw /f/hello") || !strings.Contains(l, "Init Duration") {
		t.Errorf("log: %q", l)
	}
	for _, line := range strings.Split(strings.TrimSpace(text("#log")), "\n") {
		if !logTime.MatchString(line) {
			t.Errorf("log line without its time: %q", line)
		}
	}
	// One point: a window of minutes around it, not years, with ticks on
	// whole seconds or minutes.
	waitAttr(t, ctx, "#latency-chart", "points", "1")
	checkTimeAxis(t, ctx, "#latency-chart", 60, 300)
	// A warm one next to it, so the filter has something to hide.
	resp, err = http.Get("http://" + s.GatewayAddr() + "/f/again")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	do("seeing the warm one", visible(`#invocations tbody tr[data-cold="false"]`))
	waitText(t, ctx, "#log", "app saw /f/again")
	// 23 more: ten points on the chart and beyond, and a second page.
	for i := range 23 {
		resp, err := http.Get(fmt.Sprintf("http://%s/f/more/%d", s.GatewayAddr(), i))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	waitAttr(t, ctx, "#latency-chart", "points", "25")
	if gaps := eval[string](t, ctx, `document.getElementById("latency-chart").dataset.gaps`); gaps != "0" {
		t.Errorf("25 invocations within seconds drawn with %s gaps", gaps)
	}
	checkTimeAxis(t, ctx, "#latency-chart", 60, 400)
	do("seeing the latest 20", chromedp.WaitVisible(chromedp.CSS(`#invocations tbody tr[data-request]:nth-child(20)`)))
	shot("3-function")
	page1 := eval[[]string](t, ctx, `[...document.querySelectorAll("#invocations tbody tr[data-start]")].map((r) => r.dataset.start)`)
	if len(page1) != 20 || !newestFirst(page1) {
		t.Errorf("page 1: %d rows, starts %v; want the latest 20, newest first", len(page1), page1)
	}
	do("paging back", chromedp.Click(chromedp.CSS("#inv-older")), chromedp.WaitVisible(chromedp.CSS(`#inv-page`)))
	waitCount(t, ctx, "#invocations tbody tr[data-start]", 5)
	page2 := eval[[]string](t, ctx, `[...document.querySelectorAll("#invocations tbody tr[data-start]")].map((r) => r.dataset.start)`)
	if !newestFirst(append(append([]string(nil), page1...), page2...)) {
		t.Errorf("page 2 %v does not continue page 1 %v back in time", page2, page1)
	}
	if disabled := eval[bool](t, ctx, `document.getElementById("inv-older").disabled`); !disabled {
		t.Error("Older is enabled on the last page")
	}
	do("back to the latest", chromedp.Click(chromedp.CSS("#inv-newer")))
	waitCount(t, ctx, "#invocations tbody tr[data-start]", 20)
	do("filtering to cold starts",
		chromedp.Click(chromedp.CSS("#cold-only")),
		chromedp.WaitNotPresent(chromedp.CSS(`#invocations tbody tr[data-cold="false"]`)),
		visible(`#invocations tbody tr[data-cold="true"]`))

	// Its trace: the waterfall of the cold start's spans. (The empty state
	// would be a failure: this request's trace is stored.)
	do("opening the trace",
		chromedp.Click(chromedp.CSS(`#invocations tbody tr[data-cold="true"] a`)),
		visible(`#waterfall-table, #trace-empty`))
	if empty := eval[bool](t, ctx, `!!document.querySelector("#trace-empty")`); empty {
		t.Fatalf("the trace page shows no waterfall for the cold start: %s", text("#waterfall"))
	}
	wf := text("#waterfall-table")
	for _, span := range []string{"gateway", "queue", "init", "invoke"} {
		if !strings.Contains(wf, span) {
			t.Errorf("waterfall of a cold start without %s:\n%s", span, wf)
		}
	}
	if bars := eval[int](t, ctx, `document.querySelectorAll("#waterfall-table .bar").length`); bars != 4 {
		t.Errorf("waterfall bars: %d, want 4", bars)
	}
	shot("4-trace")

	// Ten thousand points over three hours with two idle stretches, drawn
	// by the page's own chart code: gaps stay gaps, ticks stay readable.
	do("drawing 10,000 points", chromedp.Evaluate[chromedp.Void](`(() => {
		const box = document.createElement("div");
		box.id = "big-chart";
		document.getElementById("main").append(box);
		const t0 = Date.now() - 3 * 3600e3, recs = [];
		for (let i = 0; i < 10000; i++) {
			let t = t0 + i * 1000;
			if (i >= 3000) t += 20 * 60e3;
			if (i >= 7000) t += 20 * 60e3;
			recs.push({ RequestID: "r" + i, InstanceID: "x", Start: new Date(t).toISOString(), QueueMS: 0.1, DurationMS: 2 + (i % 7), Cold: i % 1000 === 0 });
		}
		const t1 = performance.now();
		window.bigPlot = latencyChart(box, null, recs);
		box.dataset.ms = String(performance.now() - t1);
	})()`))
	if got := eval[string](t, ctx, `document.getElementById("big-chart").dataset.points + "/" + document.getElementById("big-chart").dataset.gaps`); got != "10000/2" {
		t.Errorf("10,000 points: points/gaps %s, want 10000/2", got)
	}
	checkTimeAxis(t, ctx, "#big-chart", 3*3600, 4*3600)
	t.Logf("10,000 points drawn in %s ms", eval[string](t, ctx, `document.getElementById("big-chart").dataset.ms`))
	shot("4a-trace-and-10000-points")

	// A function nobody deployed: a 404 page, not an empty function page.
	do("opening an unknown function", chromedp.Navigate(admin+"/functions/no-such-fn"), visible("#not-found"))
	if h := text("#not-found"); !strings.Contains(h, "No function named no-such-fn") {
		t.Errorf("404 page heading: %q", h)
	}
	shot("4b-not-found")

	do("opening the cost page",
		chromedp.Navigate(admin+"/"),
		visible(`#functions tbody tr[data-function="f"]`),
		chromedp.Click(chromedp.CSS(`.top nav a[href="/cost"]`)),
		visible(`#cost tbody tr[data-function="f"]`),
		visible(`#tune .tune-item[data-function="f"]`))
	if row := text(`#cost tbody tr[data-function="f"]`); !strings.Contains(row, "256 MB") || !strings.Contains(row, "$") {
		t.Errorf("cost row: %q", row)
	}
	if total := text("#cost-total"); !strings.HasPrefix(total, "$") {
		t.Errorf("cost total: %q", total)
	}
	// Keep-warm advice: the replayed cold starts are a count of their own,
	// never "6 of 5"; the recorded count is in the caption.
	do("seeing the keep-warm advice", visible(`#advice tr[data-keep-warm="0"] td.cold-starts`))
	for _, c := range eval[[]string](t, ctx, `[...document.querySelectorAll("#advice td.cold-starts")].map((td) => td.textContent)`) {
		if _, err := strconv.Atoi(c); err != nil {
			t.Errorf("advice cold starts cell %q is not a count", c)
		}
	}
	if cap := text("#advice caption"); !strings.Contains(cap, "Recorded: 1 cold start with keep_warm 0") {
		t.Errorf("advice caption: %q", cap)
	}
	shot("5-cost")

	// A `stoke tune` run, then its chart and recommendation on the page,
	// the chart's ticks at the sizes measured.
	tuneRun(t, s)
	do("reloading the cost page",
		chromedp.Navigate(admin+"/cost"),
		visible(`#tune .tune-item[data-function="f"] .recommendation`),
		visible(`#tune .tune-item[data-function="f"] .uplot`))
	if rec := text(`#tune .tune-item[data-function="f"] .recommendation`); !strings.Contains(rec, " MB") {
		t.Errorf("tune recommendation: %q", rec)
	}
	if ticks := eval[string](t, ctx, `document.querySelector('#tune .tune-item[data-function="f"] [role=img]').dataset.ticks`); ticks != "128|256" {
		t.Errorf("tune chart ticks %q, want the measured sizes 128|256", ticks)
	}
	shot("6-cost-tuned")
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
	if sn := text(`#summary .snapshot`); !strings.Contains(sn, "instances fork from template py-1-template-") || !strings.Contains(sn, " ms, ") ||
		!strings.Contains(sn, "python /usr/bin/python3 3.") {
		t.Errorf("template line: %q", sn)
	}
	// Its response cache: hit ratio, entries and memory.
	if c := text(`#summary .cache`); !strings.HasSuffix(c, "response cache: hit ratio 0%, 0 entries, 0.0 of 8 MB") {
		t.Errorf("response cache in the summary: %q", c)
	}
}

// tuneRun runs a small `stoke tune` of f through the admin API, as the CLI
// does.
func tuneRun(t *testing.T, s *server.Server) {
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
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"result"`) {
		t.Fatalf("tune: %d %s", resp.StatusCode, body)
	}
}

var logTime = regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} `)

// eval runs a script in the page and returns its value.
func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// increasing says whether a comma-separated list of numbers increases.
func increasing(list string) bool {
	prev := math.Inf(-1)
	for _, f := range strings.Split(list, ",") {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= prev {
			return false
		}
		prev = v
	}
	return true
}

// newestFirst says whether RFC 3339 times go back in time.
func newestFirst(starts []string) bool {
	for i := 1; i < len(starts); i++ {
		a, err1 := time.Parse(time.RFC3339Nano, starts[i-1])
		b, err2 := time.Parse(time.RFC3339Nano, starts[i])
		if err1 != nil || err2 != nil || !a.After(b) {
			return false
		}
	}
	return true
}

// checkTimeAxis reads what a latency chart drew: its x range must span
// between lo and hi seconds, and every tick label must be a clock time on
// a whole second or minute (or a date), never a fraction of a second.
func checkTimeAxis(t *testing.T, ctx context.Context, sel string, lo, hi float64) {
	t.Helper()
	d := eval[map[string]string](t, ctx, `({...document.querySelector(`+strconv.Quote(sel)+`).dataset})`)
	xmin, _ := strconv.ParseFloat(d["xMin"], 64)
	xmax, _ := strconv.ParseFloat(d["xMax"], 64)
	if span := xmax - xmin; span < lo || span > hi {
		t.Errorf("%s: x axis spans %.0f s, want %.0f to %.0f", sel, span, lo, hi)
	}
	ticks := strings.Split(d["ticks"], "|")
	if len(ticks) < 2 || len(ticks) > 16 {
		t.Errorf("%s: %d ticks %q", sel, len(ticks), d["ticks"])
	}
	for _, tk := range ticks {
		if !tickLabel.MatchString(tk) {
			t.Errorf("%s: tick label %q is not a clock time", sel, tk)
		}
	}
}

var tickLabel = regexp.MustCompile(`^(\d\d:\d\d(:\d\d)?|\d{1,2} \w+\.?)$`)

// waitAttr waits until the element's data-name is want.
func waitAttr(t *testing.T, ctx context.Context, sel, name, want string) {
	t.Helper()
	js := `document.querySelector(` + strconv.Quote(sel) + `).dataset[` + strconv.Quote(name) + `] || ""`
	for deadline := time.Now().Add(15 * time.Second); ; {
		got := eval[string](t, ctx, js)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s data-%s is %q, want %q", sel, name, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitCount waits until sel matches n elements.
func waitCount(t *testing.T, ctx context.Context, sel string, n int) {
	t.Helper()
	js := `document.querySelectorAll(` + strconv.Quote(sel) + `).length`
	for deadline := time.Now().Add(15 * time.Second); ; {
		got := eval[int](t, ctx, js)
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s matches %d elements, want %d", sel, got, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
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
