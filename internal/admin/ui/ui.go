// Package ui is Stoke's web dashboard: a login page and a few HTML pages
// whose script reads the admin API's JSON from the browser. Everything is
// embedded in the binary, so serving it needs no Node.js and no files.
package ui

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
)

//go:embed static templates
var files embed.FS

var pages = template.Must(template.ParseFS(files, "templates/*.html"))

// Known says whether a function name has a page: deployed now, or with
// recorded invocations.
type Known func(ctx context.Context, function string) bool

// Handler serves the dashboard. Pages need the login cookie (without it they
// redirect to /login); the static assets do not, since the login page needs
// its stylesheet and they hold nothing secret. A function page for a name
// known does not know is a 404 page.
func Handler(auth *Auth, known Known) http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(files, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		render(w, http.StatusOK, "login.html", view{Title: "Log in", Next: safeNext(r.FormValue("next"))})
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		next := safeNext(r.FormValue("next"))
		if auth.Limited(r) {
			render(w, http.StatusTooManyRequests, "login.html", view{Title: "Log in", Next: next,
				Error: "Too many wrong tokens from your address; wait a minute and try again."})
			return
		}
		if !auth.Token(strings.TrimSpace(r.FormValue("token"))) {
			auth.Failed(r)
			render(w, http.StatusUnauthorized, "login.html", view{Title: "Log in", Next: next,
				Error: "That is not the admin token. It is admin.token in stoke.yaml, or the file admin-token in data_dir."})
			return
		}
		auth.login(w, r)
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		auth.logout(w, r)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
	page := func(tmpl, title string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !auth.Authorized(r) {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			v := view{Title: title, Name: r.PathValue("name"), ID: r.PathValue("id")}
			if v.Name != "" {
				v.Title = v.Name + " · " + title
			}
			render(w, http.StatusOK, tmpl, v)
		}
	}
	mux.Handle("GET /{$}", page("functions.html", "Functions"))
	fnPage := page("function.html", "Function")
	mux.HandleFunc("GET /functions/{name}", func(w http.ResponseWriter, r *http.Request) {
		if auth.Authorized(r) && known != nil && !known(r.Context(), r.PathValue("name")) {
			render(w, http.StatusNotFound, "notfound.html", view{Title: "Not found", Name: r.PathValue("name")})
			return
		}
		fnPage(w, r)
	})
	mux.Handle("GET /traces/{id}", page("trace.html", "Trace"))
	mux.Handle("GET /cost", page("cost.html", "Cost"))
	// Anything else: still ask for the login first, so the dashboard's
	// shape is not visible to strangers.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if !auth.Authorized(r) {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		http.NotFound(w, r)
	})
	return mux
}

// view is what the templates see.
type view struct {
	Title, Error, Next string
	Name, ID           string // function name, request id
}

func render(w http.ResponseWriter, status int, name string, v view) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Pages hold live data: never serve them from cache, never frame them.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, v); err != nil {
		slog.Error("rendering the dashboard", "page", name, "err", err)
	}
}

// safeNext keeps a post-login redirect on this site: a path, not "//host".
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}
