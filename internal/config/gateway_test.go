package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestTrustedProxies(t *testing.T) {
	cfg, err := Load(writeConfig(t, "gateway:\n  trusted_proxies: [10.0.0.0/8, 192.0.2.1, \"fd00::/8\", 10.1.2.3/16]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32"),
		netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("10.1.0.0/16"),
	}
	if !reflect.DeepEqual(cfg.Gateway.TrustedProxies, want) {
		t.Errorf("trusted_proxies %v, want %v", cfg.Gateway.TrustedProxies, want)
	}
	if cfg, _ := Load(writeConfig(t, "listen: 127.0.0.1:8080\n")); len(cfg.Gateway.TrustedProxies) != 0 {
		t.Errorf("default %v, want none", cfg.Gateway.TrustedProxies)
	}
	for text, want := range map[string]string{
		"gateway: {trusted_proxies: 10.0.0.0/8}":              "stoke.yaml:1: gateway.trusted_proxies: expected a list, got \"10.0.0.0/8\"",
		"gateway: {trusted_proxies: [10.0.0.0/33]}":           "stoke.yaml:1: gateway.trusted_proxies[0]: \"10.0.0.0/33\" is not a CIDR or an IP address",
		"gateway: {trusted_proxies: [localhost]}":             "stoke.yaml:1: gateway.trusted_proxies[0]: \"localhost\" is not a CIDR or an IP address",
		"gateway: {trusted_proxies: [\"fe80::1%eth0\"]}":      "stoke.yaml:1: gateway.trusted_proxies[0]: \"fe80::1%eth0\" has a zone",
		"gateway: {trusted_proxies: [[10.0.0.0/8]]}":          "stoke.yaml:1: gateway.trusted_proxies[0]: expected a CIDR, got a list",
		"gateway: {trusted_proxies: [10.0.0.0/8, 300.1.1.1]}": "stoke.yaml:1: gateway.trusted_proxies[1]: \"300.1.1.1\" is not a CIDR",
	} {
		_, err := Load(writeConfig(t, text+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %s", text, err, want)
		}
	}
}
