package config

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"gopkg.in/yaml.v3"
)

// Cache is a function's response cache (its cache: block); a function
// without one has a nil *Cache.
type Cache struct {
	MaxBytes    int64         // default 64 MB
	DefaultTTL  time.Duration // freshness when a response gives none; default 0
	StaleIfCold time.Duration // default 10m
	KeyHeaders  []string      // canonical header names; default none
}

// Cache limits: a budget small enough to be a typo is refused, as is one
// no machine Stoke runs on would have.
const (
	minCacheBytes  = 64 << 10
	maxCacheBytes  = 64 << 30
	maxKeyHeaders  = 16
	maxCacheWindow = 365 * 24 * time.Hour
)

var cacheKeys = map[string]setter[*Cache]{
	"max_bytes": func(p *parser, k string, v *yaml.Node, c *Cache) {
		p.byteSize(v, k, minCacheBytes, maxCacheBytes, &c.MaxBytes)
	},
	"default_ttl": func(p *parser, k string, v *yaml.Node, c *Cache) {
		p.duration(v, k, 0, maxCacheWindow, "0s to 8760h (a year)", &c.DefaultTTL)
	},
	"stale_if_cold": func(p *parser, k string, v *yaml.Node, c *Cache) {
		p.duration(v, k, 0, maxCacheWindow, "0s (never) to 8760h (a year)", &c.StaleIfCold)
	},
	"key_headers": func(p *parser, k string, v *yaml.Node, c *Cache) { p.keyHeaders(v, k, c) },
}

// cache reads a function's cache block: a mapping, {} for the defaults.
func (p *parser) cache(n *yaml.Node, key string, s *fnState) {
	if r := resolve(n); r.Kind != yaml.MappingNode {
		p.errf(n, key, "expected a mapping, got %s; allowed: {} for the defaults, or max_bytes, default_ttl, stale_if_cold, key_headers", describe(r))
		return
	}
	c := &Cache{MaxBytes: 64 << 20, StaleIfCold: 10 * time.Minute}
	walk(p, n, key, cacheKeys, c)
	s.fn.Cache = c
}

// byteSize reads a size: bytes, or a number with KB, MB, GB (as Lambda's
// memory, 1 MB = 1024 KB) or KiB, MiB, GiB.
func (p *parser) byteSize(n *yaml.Node, key string, lo, hi int64, dst *int64) {
	allow := fmt.Sprintf("allowed: %s to %s, as bytes or like 64MB, 512KB, 1GB", FormatBytes(lo), FormatBytes(hi))
	s, ok := p.scalar(n, key, "a size like 64MB", allow)
	if !ok {
		return
	}
	s = strings.TrimSpace(s)
	num := strings.TrimRight(s, "KMGiBkmgib ")
	unit := strings.ToUpper(strings.TrimSpace(s[len(num):]))
	mult := map[string]int64{"": 1, "B": 1, "KB": 1 << 10, "KIB": 1 << 10, "MB": 1 << 20, "MIB": 1 << 20, "GB": 1 << 30, "GIB": 1 << 30}[unit]
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || mult == 0 {
		p.errf(n, key, "%q is not a size; %s", s, allow)
		return
	}
	if v < lo/mult || v > hi/mult || v*mult < lo {
		p.errf(n, key, "%s is out of range; %s", s, allow)
		return
	}
	*dst = v * mult
}

// FormatBytes prints a size the way stoke.yaml writes it: 64MB, 512KB.
func FormatBytes(n int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}} {
		if n >= u.m && n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// keyHeaders reads key_headers: request header names, each at most once.
// Host is already part of every key.
func (p *parser) keyHeaders(n *yaml.Node, key string, c *Cache) {
	r := resolve(n)
	if r.Kind != yaml.SequenceNode {
		p.errf(n, key, "expected a list of header names, got %s; allowed: e.g. [Accept-Language, X-Tenant]", describe(r))
		return
	}
	if len(r.Content) > maxKeyHeaders {
		p.errf(n, key, "%d headers; allowed: at most %d", len(r.Content), maxKeyHeaders)
		return
	}
	var names []string
	for i, item := range r.Content {
		ik := fmt.Sprintf("%s[%d]", key, i)
		var h string
		if !p.str(item, ik, &h) {
			continue
		}
		name := http.CanonicalHeaderKey(strings.TrimSpace(h))
		switch {
		case !httpguts.ValidHeaderFieldName(name):
			p.errf(item, ik, "%q is not a header name; allowed: letters, digits and !#$%%&'*+-.^_`|~", h)
		case name == "Host":
			p.errf(item, ik, "Host is part of every key already; allowed: remove it")
		case slices.Contains(names, name):
			p.errf(item, ik, "%s is listed twice; allowed: each header once", name)
		default:
			names = append(names, name)
		}
	}
	c.KeyHeaders = names
}

// fingerprint is the cache block's part of the function's fingerprint: a
// change to it makes a new version (and so an empty cache).
func (c *Cache) fingerprint() string {
	if c == nil {
		return "" // as before caches existed: versions do not change
	}
	return fmt.Sprintf("cache=%d %d %d %q\n", c.MaxBytes, c.DefaultTTL, c.StaleIfCold, c.KeyHeaders)
}
