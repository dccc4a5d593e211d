package ui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/http"
	"sync"
	"time"
)

// CookieName is the dashboard's login cookie. It carries a random session
// id, never the admin token: logging out revokes it, and it expires. It is
// HttpOnly (the page's script never sees it) and SameSite=Strict (no other
// site can make the browser send it), so the API accepts it as it accepts
// the bearer token.
const CookieName = "stoke_session"

const (
	// sessionAge is how long a login lasts.
	sessionAge = 12 * time.Hour
	// maxFailures wrong tokens from one client address within failWindow,
	// and the next attempt is answered 429 until the window has passed.
	maxFailures = 5
	failWindow  = time.Minute
	// maxTracked bounds the addresses and sessions kept, so a flood of
	// either costs bounded memory.
	maxTracked = 10000
)

// Auth checks the admin token, the dashboard's sessions and the failed
// attempts of each client address. One per admin listener.
type Auth struct {
	token []byte

	mu       sync.Mutex
	sessions map[string]time.Time // id → expiry
	failures map[string][]time.Time
	now      func() time.Time
}

// NewAuth returns an Auth for token.
func NewAuth(token string) *Auth {
	return &Auth{token: []byte(token), sessions: map[string]time.Time{}, failures: map[string][]time.Time{}, now: time.Now}
}

// Token reports whether got is the admin token.
func (a *Auth) Token(got string) bool {
	return len(a.token) > 0 && subtle.ConstantTimeCompare([]byte(got), a.token) == 1
}

// Authorized says whether r carries a live session cookie.
func (a *Auth) Authorized(r *http.Request) bool {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.sessions[c.Value]
	if ok && a.now().After(exp) {
		delete(a.sessions, c.Value)
		return false
	}
	return ok
}

// Limited says whether r's client address has failed too often lately;
// it is then answered 429 without its token being looked at.
func (a *Auth) Limited(r *http.Request) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.recent(clientAddr(r))) >= maxFailures
}

// Failed counts a wrong token from r's client address.
func (a *Auth) Failed(r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	addr := clientAddr(r)
	if _, ok := a.failures[addr]; !ok && len(a.failures) >= maxTracked {
		a.pruneFailures()
		if len(a.failures) >= maxTracked {
			return
		}
	}
	a.failures[addr] = append(a.recent(addr), a.now())
}

// recent is addr's failures within the window (the caller holds mu).
func (a *Auth) recent(addr string) []time.Time {
	fs := a.failures[addr]
	cut := a.now().Add(-failWindow)
	i := 0
	for i < len(fs) && fs[i].Before(cut) {
		i++
	}
	if i == len(fs) {
		delete(a.failures, addr)
		return nil
	}
	a.failures[addr] = fs[i:]
	return fs[i:]
}

func (a *Auth) pruneFailures() {
	for addr := range a.failures {
		a.recent(addr)
	}
}

// login starts a session and sets its cookie.
func (a *Auth) login(w http.ResponseWriter, r *http.Request) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	a.mu.Lock()
	now := a.now()
	if len(a.sessions) >= maxTracked {
		for k, exp := range a.sessions {
			if now.After(exp) {
				delete(a.sessions, k)
			}
		}
		if len(a.sessions) >= maxTracked { // still full: the oldest logins go
			for k := range a.sessions {
				delete(a.sessions, k)
				if len(a.sessions) < maxTracked {
					break
				}
			}
		}
	}
	a.sessions[id] = now.Add(sessionAge)
	delete(a.failures, clientAddr(r))
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: id, Path: "/",
		MaxAge: int(sessionAge.Seconds()), HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, // a plain-HTTP listener (on 127.0.0.1) could not send a Secure cookie back
	})
}

// logout revokes r's session and clears its cookie.
func (a *Auth) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		a.mu.Lock()
		delete(a.sessions, c.Value)
		a.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// clientAddr is the address failures are counted against: the peer's IP
// (not a header a client could set).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
