package ui

import "time"

// SetClock makes a tell the time with now (tests of expiry and windows).
func SetClock(a *Auth, now func() time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.now = now
}
