package config

import (
	"net"
	"os"

	"gopkg.in/yaml.v3"
)

// TLS is a certificate and its key, PEM files, for a listener.
type TLS struct {
	Cert, Key string // absolute paths; both empty: plain HTTP
}

// On says whether TLS is configured.
func (t TLS) On() bool { return t.Cert != "" }

// MinAdminToken is the shortest admin.token accepted: guessing it must be
// hopeless even without the login rate limit.
const MinAdminToken = 32

var tlsKeys = map[string]setter[*TLS]{
	"cert": func(p *parser, k string, v *yaml.Node, t *TLS) { p.path(v, k, &t.Cert) },
	"key":  func(p *parser, k string, v *yaml.Node, t *TLS) { p.path(v, k, &t.Key) },
}

// tls reads a tls: {cert, key} mapping: both files, existing.
func (p *parser) tls(n *yaml.Node, key string, t *TLS) {
	walk(p, n, key, tlsKeys, t)
	if t.Cert == "" || t.Key == "" {
		p.errf(n, key, "needs both cert and key; allowed: {cert: server.crt, key: server.key} (PEM files)")
		return
	}
	for _, f := range []string{t.Cert, t.Key} {
		if _, err := os.Stat(f); err != nil {
			p.errf(n, key, "%s: %v; allowed: an existing PEM file, absolute or relative to %s", f, err, p.dir)
		}
	}
}

// adminToken checks admin.token's length.
func (p *parser) adminToken(n *yaml.Node, key string, a *Admin) {
	var s string
	if !p.str(n, key, &s) {
		return
	}
	if len(s) < MinAdminToken {
		p.errf(n, key, "%d characters; allowed: at least %d (or leave it out: Stoke generates one into data_dir)", len(s), MinAdminToken)
		return
	}
	a.Token = s
}

// loopback says whether a listen address accepts connections from this
// machine only.
func loopback(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkAdminListener refuses an admin listener reachable from other
// machines in clear text: the token (and the dashboard's session) would
// cross the network readable.
func (p *parser) checkAdminListener(c *Config) {
	if c.Admin.TLS.On() || c.Admin.InsecureHTTP || loopback(c.Admin.Listen) {
		return
	}
	at := p.present["admin"]
	p.errf(at, "admin.listen", "%s is reachable from other machines and admin.tls is not set: the admin token would cross the network in clear text; allowed: a loopback address (127.0.0.1:8081), admin.tls: {cert, key}, or admin.insecure_http: true (behind a TLS proxy)", c.Admin.Listen)
}
