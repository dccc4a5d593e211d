package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/stokehq/stoke/internal/keepalive"
)

// The scalar validators: each reads one value, reports what is wrong with
// it and what is allowed, and sets dst only when it is valid.

var bareNumRe = regexp.MustCompile(`^[+-]?[0-9.]+$`)

// scalar returns the env-expanded text of a scalar node; want and allow
// describe the expected value for the message when n is not a scalar.
func (p *parser) scalar(n *yaml.Node, key, want, allow string) (string, bool) {
	r := resolve(n)
	if r.Kind != yaml.ScalarNode {
		msg := fmt.Sprintf("expected %s, got %s", want, describe(r))
		if allow != "" {
			msg += "; " + allow
		}
		p.errf(n, key, "%s", msg)
		return "", false
	}
	return p.expand(n, key, r.Value)
}

func (p *parser) str(n *yaml.Node, key string, dst *string) bool {
	s, ok := p.scalar(n, key, "a string", "")
	if ok {
		*dst = s
	}
	return ok
}

// scalarValue stringifies a scalar of any type (numbers, bools) as written.
func (p *parser) scalarValue(n *yaml.Node, key string, dst *string) bool {
	s, ok := p.scalar(n, key, "a string, number or bool", "")
	if ok {
		*dst = s
	}
	return ok
}

// checked reads a string that valid accepts; why completes the message
// "%q WHY" when it does not.
func (p *parser) checked(n *yaml.Node, key string, valid func(string) bool, why string, dst *string) {
	var s string
	if !p.str(n, key, &s) {
		return
	}
	if !valid(s) {
		p.errf(n, key, "%q %s", s, why)
		return
	}
	*dst = s
}

// oneOf reads a value that must be one of choices. want is what the
// value must be when it is not a scalar; what and allow complete
// "%q is not WHAT; allowed: ALLOW".
func (p *parser) oneOf(n *yaml.Node, key, want, what, allow string, choices []string, dst *string) {
	s, ok := p.scalar(n, key, want, "")
	if !ok {
		return
	}
	if !slices.Contains(choices, s) {
		p.errf(n, key, "%q is not %s%s; allowed: %s", s, what, closest(s, choices), allow)
		return
	}
	*dst = s
}

func (p *parser) integer(n *yaml.Node, key string, lo, hi int64, unit string, dst *int64) bool {
	allow := fmt.Sprintf("allowed: %d to %d%s", lo, hi, unit)
	s, ok := p.scalar(n, key, "an integer", allow)
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		p.errf(n, key, "%q is not an integer; %s", s, allow)
		return false
	}
	if v < lo || v > hi {
		p.errf(n, key, "%d is out of range; %s", v, allow)
		return false
	}
	*dst = v
	return true
}

func (p *parser) intField(n *yaml.Node, key string, lo, hi int64, unit string, dst *int) {
	var v int64
	if p.integer(n, key, lo, hi, unit, &v) {
		*dst = int(v)
	}
}

// price parses a price in dollars: a non-negative decimal number. 0 is
// allowed (to leave a charge out); a leading $ is not, so YAML's and the
// user's idea of the value agree.
func (p *parser) price(n *yaml.Node, key string, dst *float64) {
	const allow = "allowed: a decimal number of dollars ≥ 0, like 0.0000166667 or 1.66667e-5"
	s, ok := p.scalar(n, key, "a number", allow)
	if !ok {
		return
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		p.errf(n, key, "%q is not a number; %s", s, allow)
		return
	}
	if v < 0 {
		p.errf(n, key, "%s is negative; %s", s, allow)
		return
	}
	*dst = v
}

// boolean parses true or false (YAML 1.2's spelling only: yes/no/on/off are
// errors rather than strings that silently mean something).
func (p *parser) boolean(n *yaml.Node, key string, dst *bool) {
	const allow = "allowed: true, false"
	s, ok := p.scalar(n, key, "a bool", allow)
	if !ok {
		return
	}
	switch strings.TrimSpace(s) {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		p.errf(n, key, "%q is not a bool; %s", s, allow)
	}
}

// duration parses a Go duration in [lo, hi] (hi 0: no upper bound).
func (p *parser) duration(n *yaml.Node, key string, lo, hi time.Duration, allowText string, dst *time.Duration) {
	allow := "allowed: " + allowText
	s, ok := p.scalar(n, key, "a duration like 10s", allow)
	if !ok {
		return
	}
	s = strings.TrimSpace(s)
	if bareNumRe.MatchString(s) {
		p.errf(n, key, "%s has no unit; add one, e.g. %ss or %sms (units: ms, s, m, h); %s", s, s, s, allow)
		return
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.errf(n, key, "%q is not a duration; allowed: Go durations like 500ms, 10s, 1m30s", s)
		return
	}
	if d < lo || (hi > 0 && d > hi) {
		p.errf(n, key, "%s is out of range; %s", s, allow)
		return
	}
	*dst = d
}

// FormatDuration prints a duration the way stoke.yaml writes it: 15m, not
// 15m0s; 24h, not 24h0m0s (keepalive's rule, which prints fixed:10m).
func FormatDuration(d time.Duration) string { return keepalive.FormatDuration(d) }

func (p *parser) hostPort(n *yaml.Node, key string, dst *string) {
	const allow = "allowed: host:port like 127.0.0.1:8080, or :8080 for all interfaces"
	s, ok := p.scalar(n, key, "a host:port string", allow)
	if !ok {
		return
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		p.errf(n, key, "%q is not host:port; %s", s, allow)
		return
	}
	if v, err := strconv.Atoi(port); err != nil || v < 0 || v > 65535 {
		p.errf(n, key, "port %q is not a number from 0 to 65535; %s", port, allow)
		return
	}
	*dst = s
}

// path reads a filesystem path, made absolute against the config's dir.
func (p *parser) path(n *yaml.Node, key string, dst *string) {
	var s string
	if !p.str(n, key, &s) {
		return
	}
	if s == "" {
		p.errf(n, key, "empty path; allowed: a path, absolute or relative to %s", p.dir)
		return
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(p.dir, s)
	}
	*dst = filepath.Clean(s)
}

func (p *parser) statusRange(n *yaml.Node, key string, r *Readiness) {
	const allow = `allowed: a status code or a range like "200-299", codes 100 to 599`
	s, ok := p.scalar(n, key, "a status range", allow)
	if !ok {
		return
	}
	loS, hiS, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if !isRange {
		hiS = loS
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(loS))
	hi, err2 := strconv.Atoi(strings.TrimSpace(hiS))
	if err1 != nil || err2 != nil || lo < 100 || hi > 599 || lo > hi {
		p.errf(n, key, "%q is not a valid status range; %s", s, allow)
		return
	}
	r.StatusMin, r.StatusMax = lo, hi
}

// prefixes reads a list of CIDRs (10.0.0.0/8) or single addresses
// (192.0.2.1, one host).
func (p *parser) prefixes(n *yaml.Node, key string, dst *[]netip.Prefix) {
	const allow = "allowed: a list of CIDRs like 10.0.0.0/8 or fd00::/8, or addresses like 192.0.2.1"
	r := resolve(n)
	if r.Kind != yaml.SequenceNode {
		p.errf(n, key, "expected a list, got %s; %s", describe(r), allow)
		return
	}
	out := []netip.Prefix{}
	for i, e := range r.Content {
		k := fmt.Sprintf("%s[%d]", key, i)
		s, ok := p.scalar(e, k, "a CIDR", allow)
		if !ok {
			continue
		}
		s = strings.TrimSpace(s)
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			switch {
			case aerr != nil:
				p.errf(e, k, "%q is not a CIDR or an IP address; %s", s, allow)
				continue
			case a.Zone() != "":
				p.errf(e, k, "%q has a zone; %s", s, allow)
				continue
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, pfx.Masked())
	}
	*dst = out
}
