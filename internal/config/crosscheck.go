package config

import (
	"fmt"
	"strings"
)

// crossChecks runs checks that span sections or functions, once every
// key is known: listen addresses, credentials, timeouts, route overlaps.
func (p *parser) crossChecks(c *Config) {
	p.checkAdminListener(c)
	if c.Listen == c.Admin.Listen && !strings.HasSuffix(c.Listen, ":0") {
		at := p.present["admin"]
		p.errf(at, "admin.listen", "%s is also the gateway listen address; allowed: a different host:port", c.Admin.Listen)
	}
	if c.InvokeAPI.Auth == "sigv4" && len(c.InvokeAPI.Credentials) == 0 && p.present["invoke_api"] != nil {
		p.errf(p.present["invoke_api"], "invoke_api.credentials", "auth sigv4 needs at least one credential; allowed: a list of {access_key_id, secret_access_key}, or auth: none")
	}
	for _, s := range p.fns {
		if s.fn.Timeout > c.Gateway.Timeout {
			line := s.node.Line
			if n := s.present["timeout"]; n != nil {
				line = n.Line
			}
			p.warnf(line, "%s.timeout %s exceeds gateway.timeout %s; HTTP requests will be cut at %s",
				s.key, FormatDuration(s.fn.Timeout), FormatDuration(c.Gateway.Timeout), FormatDuration(c.Gateway.Timeout))
		}
	}
	// Every route must lead to exactly one function, so no path may match
	// routes of two functions; within a function, only exact repeats are
	// mistakes.
	for i, s := range p.fns {
		for a, ra := range s.routes {
			for _, rb := range s.routes[:a] {
				if ra.pattern == rb.pattern {
					p.errs = append(p.errs, &Error{File: p.file, Line: ra.line, Key: ra.key,
						Msg: fmt.Sprintf("duplicate route %q; already listed at line %d", ra.pattern, rb.line)})
				}
			}
			for _, t := range p.fns[:i] {
				for _, rb := range t.routes {
					if !Overlap(ra.pattern, rb.pattern) {
						continue
					}
					var msg string
					if ra.pattern == rb.pattern {
						msg = fmt.Sprintf("duplicate route %q; function %s already has it at line %d; a path can go to only one function",
							ra.pattern, t.fn.Name, rb.line)
					} else {
						msg = fmt.Sprintf("route %q of function %s overlaps route %q of function %s at line %d (both match %s); a path can go to only one function",
							ra.pattern, s.fn.Name, rb.pattern, t.fn.Name, rb.line, witness(ra.pattern, rb.pattern))
					}
					p.errs = append(p.errs, &Error{File: p.file, Line: ra.line, Key: ra.key, Msg: msg})
				}
			}
		}
	}
}

// witness returns a path both overlapping patterns match, for messages.
func witness(a, b string) string {
	pa, wa := strings.CutSuffix(a, "*")
	pb, wb := strings.CutSuffix(b, "*")
	switch {
	case !wa:
		return a
	case !wb:
		return b
	case len(pa) >= len(pb):
		return pa
	default:
		return pb
	}
}
