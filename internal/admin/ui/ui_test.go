package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/admin/ui"
)

const token = "s3cret-that-is-at-least-32-chars-long"

// login posts the token to h's login page and returns the session cookie.
func login(t *testing.T, h http.Handler) *http.Cookie {
	t.Helper()
	form := url.Values{"token": {token}}
	req := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	for _, c := range w.Result().Cookies() {
		if c.Name == ui.CookieName && c.Value != "" {
			return c
		}
	}
	t.Fatalf("login: %d, no session cookie", w.Code)
	return nil
}

// Every page needs the login cookie; without it (or with a wrong one) the
// answer is a redirect to the login page that comes back to the same page.
func TestPagesRequireLogin(t *testing.T) {
	h := ui.Handler(ui.NewAuth(token), nil)
	session := login(t, h)
	for _, path := range []string{"/", "/functions/f", "/traces/abc", "/cost", "/nope"} {
		// The token itself is no session.
		for _, cookie := range []string{"", "wrong", token} {
			req := httptest.NewRequest("GET", path, nil)
			if cookie != "" {
				req.AddCookie(&http.Cookie{Name: ui.CookieName, Value: cookie})
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			want := "/login?next=" + url.QueryEscape(path)
			if w.Code != http.StatusSeeOther || w.Header().Get("Location") != want {
				t.Errorf("GET %s with cookie %q: %d Location %q, want 303 to %s", path, cookie, w.Code, w.Header().Get("Location"), want)
			}
		}
		req := httptest.NewRequest("GET", path, nil)
		req.AddCookie(session)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		wantCode := http.StatusOK
		if path == "/nope" {
			wantCode = http.StatusNotFound
		}
		if w.Code != wantCode {
			t.Errorf("GET %s logged in: %d, want %d", path, w.Code, wantCode)
		}
		if wantCode == 200 && (w.Header().Get("Cache-Control") != "no-store" || !strings.Contains(w.Body.String(), `<main id="main"`)) {
			t.Errorf("GET %s logged in: %v\n%s", path, w.Header(), w.Body)
		}
	}
}

func TestLoginCookie(t *testing.T) {
	h := ui.Handler(ui.NewAuth(token), nil)
	post := func(tok, next string) *httptest.ResponseRecorder {
		form := url.Values{"token": {tok}, "next": {next}}
		req := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}

	w := post("wrong", "/cost")
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "not the admin token") || len(w.Result().Cookies()) != 0 {
		t.Errorf("wrong token: %d cookies %v\n%s", w.Code, w.Result().Cookies(), w.Body)
	}

	w = post(token, "/cost")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/cost" {
		t.Errorf("right token: %d Location %q", w.Code, w.Header().Get("Location"))
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("cookies: %v", cs)
	}
	c := cs[0]
	if c.Name != ui.CookieName || len(c.Value) != 64 || strings.Contains(c.Value, token) || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.MaxAge <= 0 {
		t.Errorf("cookie: %+v (Set-Cookie: %s)", c, w.Header().Get("Set-Cookie"))
	}
	if sc := w.Header().Get("Set-Cookie"); !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
		t.Errorf("Set-Cookie: %s", sc)
	}

	// After login, only this site: an absolute or protocol-relative next
	// would make the login page an open redirect.
	for _, next := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example", ""} {
		if loc := post(token, next).Header().Get("Location"); loc != "/" {
			t.Errorf("next %q: redirected to %q", next, loc)
		}
	}

	// The session works until logout, and not after: logging out revokes
	// it on the server, not only in this browser.
	page := func() int {
		req := httptest.NewRequest("GET", "/cost", nil)
		req.AddCookie(c)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	if code := page(); code != 200 {
		t.Errorf("with the session: %d", code)
	}
	req := httptest.NewRequest("POST", "/logout", nil)
	req.AddCookie(c)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if cs := w.Result().Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 || w.Header().Get("Location") != "/login" {
		t.Errorf("logout: %d %v", w.Code, cs)
	}
	if code := page(); code != http.StatusSeeOther {
		t.Errorf("the session after logout: %d", code)
	}
}

// Wrong tokens from one address are limited: after a handful in a minute
// the login answers 429, even for the right token; another address is not
// affected.
func TestLoginRateLimit(t *testing.T) {
	h := ui.Handler(ui.NewAuth(token), nil)
	post := func(tok, addr string) int {
		form := url.Values{"token": {tok}}
		req := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = addr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	for i := range 5 {
		if code := post("guess", "192.0.2.1:1234"); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, code)
		}
	}
	if code := post("guess", "192.0.2.1:1235"); code != http.StatusTooManyRequests {
		t.Errorf("sixth guess: %d, want 429", code)
	}
	if code := post(token, "192.0.2.1:1236"); code != http.StatusTooManyRequests {
		t.Errorf("the right token while limited: %d, want 429", code)
	}
	if code := post(token, "192.0.2.2:1234"); code != http.StatusSeeOther {
		t.Errorf("another address: %d, want 303", code)
	}
}

// A session ends by itself 12 hours after its login, and a limited
// address may try again once the minute of its failures has passed: both
// on the server's clock, not the browser's word.
func TestSessionAndLimitExpire(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	auth := ui.NewAuth(token)
	ui.SetClock(auth, func() time.Time { return now })
	h := ui.Handler(auth, nil)
	page := func(c *http.Cookie) int {
		req := httptest.NewRequest("GET", "/cost", nil)
		req.AddCookie(c)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	c := login(t, h)
	now = now.Add(12*time.Hour - time.Second)
	if code := page(c); code != 200 {
		t.Errorf("the session just before 12 hours: %d", code)
	}
	now = now.Add(2 * time.Second)
	if code := page(c); code != http.StatusSeeOther {
		t.Errorf("the session after 12 hours: %d, want a redirect to the login", code)
	}

	post := func(tok string) int {
		form := url.Values{"token": {tok}}
		req := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = "192.0.2.7:1234"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	for range 5 {
		post("guess")
	}
	if code := post(token); code != http.StatusTooManyRequests {
		t.Fatalf("the right token while limited: %d, want 429", code)
	}
	now = now.Add(time.Minute + time.Second)
	if code := post(token); code != http.StatusSeeOther {
		t.Errorf("the right token a minute later: %d, want 303", code)
	}
}

// Static assets are public (the login page needs them) and embedded.
func TestStatic(t *testing.T) {
	h := ui.Handler(ui.NewAuth(token), nil)
	for _, p := range []string{"/static/app.js", "/static/app.css", "/static/vendor/uplot/uPlot.iife.min.js", "/static/vendor/uplot/LICENSE"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
		if w.Code != 200 || w.Body.Len() < 100 {
			t.Errorf("GET %s: %d, %d bytes", p, w.Code, w.Body.Len())
		}
	}
}

// A function page for a name nobody knows is a 404 page, not an empty page
// that looks real; a known name gets its page.
func TestUnknownFunctionIs404(t *testing.T) {
	h := ui.Handler(ui.NewAuth(token), func(_ context.Context, name string) bool { return name == "hello" })
	session := login(t, h)
	for name, want := range map[string]int{"hello": 200, "nope": 404} {
		req := httptest.NewRequest("GET", "/functions/"+name, nil)
		req.AddCookie(session)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != want {
			t.Errorf("GET /functions/%s: %d, want %d", name, w.Code, want)
		}
		if want == 404 && !strings.Contains(w.Body.String(), "No function named <code>nope</code>") {
			t.Errorf("404 page: %s", w.Body)
		}
	}
	// Without the login, even the 404 asks to log in first.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/functions/nope", nil))
	if w.Code != http.StatusSeeOther {
		t.Errorf("not logged in: %d", w.Code)
	}
}
