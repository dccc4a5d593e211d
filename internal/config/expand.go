package config

import (
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/stokehq/stoke/internal/lambdaspec"
)

// expand replaces ${NAME} with the environment variable NAME and $$ with $;
// any other $ is kept, so shell text like $HOME passes through.
func (p *parser) expand(n *yaml.Node, key, s string) (string, bool) {
	if !strings.Contains(s, "$") {
		return s, true
	}
	var b strings.Builder
	ok := true
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				p.errf(n, key, "unterminated ${ in %q; allowed: ${NAME} for an environment variable, $$ for a literal $", s)
				return "", false
			}
			name := s[i+2 : i+2+end]
			i += 2 + end
			if !lambdaspec.ValidEnvName(name) {
				p.errf(n, key, "${%s} is not a valid variable reference; allowed: ${NAME} with letters, digits and _, $$ for a literal $", name)
				ok = false
				continue
			}
			v, set := p.lookup(name)
			if !set {
				p.errf(n, key, "environment variable %s is not set (referenced as ${%s}); set it, or write $${%s} for a literal", name, name, name)
				ok = false
				continue
			}
			b.WriteString(v)
			p.expanded = append(p.expanded, v)
		default:
			b.WriteByte('$')
		}
	}
	return b.String(), ok
}
