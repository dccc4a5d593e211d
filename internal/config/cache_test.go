package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func parseIn(t *testing.T, text string) (*Config, error) {
	t.Helper()
	t.Chdir(t.TempDir())
	return Parse("stoke.yaml", []byte(text))
}

func TestCacheBlock(t *testing.T) {
	cfg, err := parseIn(t, fn("    cache: {max_bytes: 16MB, default_ttl: 30s, stale_if_cold: 2m, key_headers: [accept-language, X-Tenant]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Functions["hello"].Cache
	want := &Cache{MaxBytes: 16 << 20, DefaultTTL: 30 * time.Second, StaleIfCold: 2 * time.Minute, KeyHeaders: []string{"Accept-Language", "X-Tenant"}}
	if c == nil || c.MaxBytes != want.MaxBytes || c.DefaultTTL != want.DefaultTTL || c.StaleIfCold != want.StaleIfCold || !slices.Equal(c.KeyHeaders, want.KeyHeaders) {
		t.Fatalf("cache %+v, want %+v", c, want)
	}

	cfg, err = parseIn(t, fn("    cache: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Functions["hello"].Cache; c == nil || c.MaxBytes != 64<<20 || c.DefaultTTL != 0 || c.StaleIfCold != 10*time.Minute || len(c.KeyHeaders) != 0 {
		t.Fatalf("defaults %+v", c)
	}
	cfg, err = parseIn(t, fn(""))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Functions["hello"].Cache != nil {
		t.Fatal("a cache without a cache block")
	}
}

func TestCacheSizes(t *testing.T) {
	for text, want := range map[string]int64{
		"64MB": 64 << 20, "64mb": 64 << 20, "512KB": 512 << 10, "1GiB": 1 << 30, "2 GB": 2 << 30, "65536": 65536, "100000B": 100000,
	} {
		cfg, err := parseIn(t, fn("    cache: {max_bytes: "+text+"}\n"))
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		if got := cfg.Functions["hello"].Cache.MaxBytes; got != want {
			t.Errorf("%s = %d, want %d", text, got, want)
		}
	}
	if FormatBytes(64<<20) != "64MB" || FormatBytes(1000) != "1000B" || FormatBytes(3<<30) != "3GB" {
		t.Fatal("FormatBytes")
	}
}

func TestCacheErrors(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"    cache: true\n", `stoke.yaml:4: functions.hello.cache: expected a mapping, got "true"; allowed: {} for the defaults, or max_bytes, default_ttl, stale_if_cold, key_headers`},
		{"    cache: {max_byte: 1MB}\n", "stoke.yaml:4: functions.hello.cache.max_byte: unknown key (did you mean max_bytes?); allowed: default_ttl, key_headers, max_bytes, stale_if_cold"},
		{"    cache: {max_bytes: 1.5GB}\n", `stoke.yaml:4: functions.hello.cache.max_bytes: "1.5GB" is not a size; allowed: 64KB to 64GB, as bytes or like 64MB, 512KB, 1GB`},
		{"    cache: {max_bytes: 64TB}\n", `stoke.yaml:4: functions.hello.cache.max_bytes: "64TB" is not a size; ...`},
		{"    cache: {max_bytes: 1000}\n", "stoke.yaml:4: functions.hello.cache.max_bytes: 1000 is out of range; allowed: 64KB to 64GB, as bytes or like 64MB, 512KB, 1GB"},
		{"    cache: {max_bytes: 65GB}\n", "stoke.yaml:4: functions.hello.cache.max_bytes: 65GB is out of range; ..."},
		{"    cache: {max_bytes: -1MB}\n", "stoke.yaml:4: functions.hello.cache.max_bytes: -1MB is out of range; ..."},
		{"    cache: {default_ttl: -1s}\n", "stoke.yaml:4: functions.hello.cache.default_ttl: -1s is out of range; allowed: 0s to 8760h (a year)"},
		{"    cache: {stale_if_cold: 10}\n", "stoke.yaml:4: functions.hello.cache.stale_if_cold: 10 has no unit; ..."},
		{"    cache: {key_headers: X-Tenant}\n", `stoke.yaml:4: functions.hello.cache.key_headers: expected a list of header names, got "X-Tenant"; allowed: e.g. [Accept-Language, X-Tenant]`},
		{"    cache: {key_headers: [\"X Tenant\"]}\n", `stoke.yaml:4: functions.hello.cache.key_headers[0]: "X Tenant" is not a header name; ...`},
		{"    cache: {key_headers: [host]}\n", "stoke.yaml:4: functions.hello.cache.key_headers[0]: Host is part of every key already; allowed: remove it"},
		{"    cache: {key_headers: [a, A]}\n", "stoke.yaml:4: functions.hello.cache.key_headers[1]: A is listed twice; allowed: each header once"},
	} {
		_, err := parseIn(t, fn(tt.text))
		if err == nil {
			t.Fatalf("%q: no error", tt.text)
		}
		got := err.Error()
		if p, ok := strings.CutSuffix(tt.want, "..."); ok {
			if !strings.HasPrefix(got, p) {
				t.Errorf("%q:\n got %s\nwant %s", tt.text, got, tt.want)
			}
		} else if got != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.text, got, tt.want)
		}
	}
}

// A changed cache block is a new version (which empties the cache); no
// cache block leaves the fingerprint as it was before caches existed.
func TestCacheFingerprint(t *testing.T) {
	f := &Function{Runtime: "http", Command: []string{"x"}}
	before := f.Fingerprint()
	f.Cache = &Cache{MaxBytes: 1 << 20}
	with := f.Fingerprint()
	f.Cache.StaleIfCold = time.Minute
	if with == before || f.Fingerprint() == with {
		t.Fatal("the cache block does not change the fingerprint")
	}
	f.Cache = nil
	if f.Fingerprint() != before {
		t.Fatal("no cache block changed the fingerprint")
	}
}
