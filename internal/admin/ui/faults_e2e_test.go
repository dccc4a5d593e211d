package ui_test

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
	"github.com/stokehq/stoke/internal/server/servertest"
)

// TestDashboardShowsFaults: what a user sees in a real Chromium when things
// break. A function whose instances cannot start is marked failing in the
// functions list and on its page, with the init error its requests get;
// a full data_dir puts a banner on every page, which goes once writes
// succeed again.
func TestDashboardShowsFaults(t *testing.T) {
	browser := chromium(t)
	sandboxtest.CheckNoLeaks(t)
	dir := t.TempDir()
	data := sandboxtest.Tmpfs(t, "", "8m")
	s := servertest.Serve(t, dir, fmt.Sprintf(`listen: 127.0.0.1:0
admin: {listen: "127.0.0.1:0"}
data_dir: %s
functions:
  ok:
    runtime: http
    command: [%q]
    memory: 256
    routes: [/ok]
    env: {STOKE_UI_APP: "1"}
  broken:
    runtime: http
    command: [sh, -c, "echo cannot open the database >&2; exit 3"]
    keep_warm: 1
    routes: [/broken]
`, data, sandboxtest.InDir(t, dir)))
	admin := "http://" + s.AdminAddr()

	_, ctx := newBrowser(t, browser)
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 2000) : ""`))
			t.Fatalf("%s: %v\nthe page reads:\n%s", what, err, body)
		}
	}
	visible := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.WaitVisible(chromedp.CSS(sel)) }

	do("logging in", chromedp.Navigate(admin+"/"), visible("#token"),
		chromedp.SendKeys(chromedp.CSS("#token"), s.Token()), chromedp.Submit(chromedp.CSS("#token")),
		visible(`#functions tbody tr[data-function="ok"]`))
	// The functions list marks it, its title the init error.
	do("seeing broken marked failing", visible(`#functions tbody tr[data-function="broken"] .failing`))
	if title := eval[string](t, ctx, `document.querySelector('#functions tr[data-function="broken"] .failing').title`); !contains(title, "cannot open the database", "exit status 3") {
		t.Errorf("the failing mark's title: %q", title)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#functions tr[data-function="ok"] .failing').length`); n != 0 {
		t.Errorf("ok is marked failing too")
	}
	// Its page says how many starts failed and what its requests get.
	do("opening broken's page", chromedp.Navigate(admin+"/functions/broken"), visible(`#summary .failing`))
	waitText(t, ctx, "#summary .failing", "starts failed in a row; requests get 502 with:")
	waitText(t, ctx, "#summary .failing", "cannot open the database")

	// No banner while data_dir is writable; a full one shows it (the page
	// asks every 5 s), and requests go on being served meanwhile.
	if hidden := eval[bool](t, ctx, `document.getElementById("banner").hidden`); !hidden {
		t.Errorf("a banner with nothing wrong: %q", eval[string](t, ctx, `document.getElementById("banner").textContent`))
	}
	filler := sandboxtest.Fill(t, data)
	get := func() {
		t.Helper()
		resp, err := http.Get("http://" + s.GatewayAddr() + "/ok")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("a request while data_dir is full: %d", resp.StatusCode)
		}
	}
	for deadline := time.Now().Add(20 * time.Second); eval[bool](t, ctx, `document.getElementById("banner").hidden`); time.Sleep(100 * time.Millisecond) {
		get() // records to write, which cannot be
		if time.Now().After(deadline) {
			t.Fatal("no banner while data_dir is full")
		}
	}
	waitText(t, ctx, "#banner", "Stoke cannot write to "+data)
	waitText(t, ctx, "#banner", "Functions keep serving;")
	// Space again: the next writes succeed and the banner goes.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); !eval[bool](t, ctx, `document.getElementById("banner").hidden`); time.Sleep(100 * time.Millisecond) {
		get()
		if time.Now().After(deadline) {
			t.Fatalf("the banner stayed after space was freed: %q", eval[string](t, ctx, `document.getElementById("banner").textContent`))
		}
	}
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
