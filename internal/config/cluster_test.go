package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const secret40 = "0123456789012345678901234567890123456789"

func TestClusterBlock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stoke.yaml")
	text := "data_dir: state\ncluster:\n  name: prod\n  node: n1\n  listen: 10.0.0.1:6222\n  routes: [nats://10.0.0.1:6222, nats://10.0.0.2:6222, nats://10.0.0.3:6222]\n  secret: " + secret40 + "\n"
	cfg, err := Parse(path, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Cluster
	if c == nil || c.Name != "prod" || c.Node != "n1" || c.Advertise != "10.0.0.1" || c.PeerListen != "10.0.0.1:6223" ||
		c.Replicas != 3 || c.Artifacts != filepath.Join(dir, "state.artifacts") || len(c.Routes) != 3 || c.ClaimTimeout != DefaultClaimTimeout {
		t.Fatalf("cluster: %+v", c)
	}
	if !strings.Contains(strings.Join(cfg.Secrets(), " "), secret40) {
		t.Error("the cluster secret is not among the secrets redacted")
	}
	// Two nodes: one replica (two would stop at the first lost node).
	two := strings.Replace(text, ", nats://10.0.0.3:6222", "", 1)
	if cfg, err := Parse(path, []byte(two)); err != nil || cfg.Cluster.Replicas != 1 {
		t.Fatalf("two nodes: %v %+v", err, cfg)
	}
	// claim_timeout's bounds are allowed, and it holds with nats_url too.
	for _, d := range []time.Duration{time.Millisecond, 250 * time.Millisecond, 5 * time.Second} {
		if cfg, err := Parse(path, []byte(text+"  claim_timeout: "+d.String()+"\n")); err != nil || cfg.Cluster.ClaimTimeout != d {
			t.Fatalf("claim_timeout %s: %v %+v", d, err, cfg)
		}
	}
	viaURL := "data_dir: state\ncluster:\n  name: prod\n  node: n1\n  advertise: 10.0.0.1\n  nats_url: nats://nats:4222\n  secret: " + secret40 + "\n  claim_timeout: 100ms\n"
	if cfg, err := Parse(path, []byte(viaURL)); err != nil || cfg.Cluster.ClaimTimeout != 100*time.Millisecond {
		t.Fatalf("claim_timeout with nats_url: %v %+v", err, cfg)
	}
	if cfg, err := Parse(path, []byte("functions: {}\n")); err != nil || cfg.Cluster != nil {
		t.Fatalf("no cluster block: %v %+v", err, cfg)
	}
}

func TestClusterErrors(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"missing secret", "cluster:\n  name: a\n  node: n1\n  listen: 10.0.0.1:6222\n",
			"stoke.yaml:2: cluster.secret: missing; allowed: a shared secret of at least 32 characters, the same on every node"},
		{"short secret", "cluster:\n  name: a\n  node: n1\n  listen: 10.0.0.1:6222\n  secret: short\n",
			"stoke.yaml:5: cluster.secret: 5 characters; allowed: at least 32 ..."},
		{"bad route", "cluster:\n  name: a\n  node: n1\n  listen: 10.0.0.1:6222\n  secret: " + secret40 + "\n  routes: [http://x]\n",
			`stoke.yaml:6: cluster.routes[0]: "http://x" is not a route URL; allowed: a list of route URLs like nats://10.0.0.2:6222 (no user or password: cluster.secret authenticates routes)`},
		{"route with password", "cluster:\n  name: a\n  node: n1\n  listen: 10.0.0.1:6222\n  secret: " + secret40 + "\n  routes: [nats://u:p@10.0.0.2:6222]\n",
			`stoke.yaml:6: cluster.routes[0]: "nats://u:p@10.0.0.2:6222" is not a route URL; ...`},
		{"nats_url and listen", "cluster:\n  name: a\n  node: n1\n  listen: 10.0.0.1:6222\n  advertise: 10.0.0.1\n  secret: " + secret40 + "\n  nats_url: nats://x:4222\n",
			"stoke.yaml:4: cluster.listen: set with nats_url; allowed: either nats_url (an existing NATS cluster) or listen and routes (an embedded one)"},
		{"unspecified listen", "cluster:\n  name: a\n  node: n1\n  listen: 0.0.0.0:6222\n  secret: " + secret40 + "\n",
			"stoke.yaml:4: cluster.advertise: missing; allowed: the address other nodes reach this node at ..."},
		{"bad node", "cluster:\n  name: a\n  node: n 1\n  listen: 10.0.0.1:6222\n  secret: " + secret40 + "\n",
			`stoke.yaml:3: cluster.node: "n 1" is not a node name; allowed: 1 to 64 letters, digits, - and _, unique per node`},
		{"tls without ca", "cluster:\n  name: a\n  node: n1\n  listen: 10.0.0.1:6222\n  secret: " + secret40 + "\n  tls: {cert: c.pem, key: k.pem}\n",
			"stoke.yaml:6: cluster.tls.ca: missing; allowed: cluster.tls needs cert, key and ca (PEM files)"},
		{"claim_timeout too long", "cluster:\n  name: a\n  node: n1\n  listen: 10.0.0.1:6222\n  secret: " + secret40 + "\n  claim_timeout: 1m\n",
			"stoke.yaml:6: cluster.claim_timeout: 1m is out of range; allowed: 1ms to 5s"},
		{"claim_timeout too short", "cluster:\n  name: a\n  node: n1\n  listen: 10.0.0.1:6222\n  secret: " + secret40 + "\n  claim_timeout: 500us\n",
			"stoke.yaml:6: cluster.claim_timeout: 500us is out of range; allowed: 1ms to 5s"},
		{"claim_timeout zero", "cluster:\n  name: a\n  node: n1\n  listen: 10.0.0.1:6222\n  secret: " + secret40 + "\n  claim_timeout: 0s\n",
			"stoke.yaml:6: cluster.claim_timeout: 0s is out of range; allowed: 1ms to 5s"},
		{"claim_timeout without unit", "cluster:\n  name: a\n  node: n1\n  listen: 10.0.0.1:6222\n  secret: " + secret40 + "\n  claim_timeout: 30\n",
			"stoke.yaml:6: cluster.claim_timeout: 30 has no unit; add one, e.g. 30s or 30ms (units: ms, s, m, h); allowed: 1ms to 5s"},
		{"claim_timeout not a duration", "cluster:\n  name: a\n  node: n1\n  listen: 10.0.0.1:6222\n  secret: " + secret40 + "\n  claim_timeout: soon\n",
			`stoke.yaml:6: cluster.claim_timeout: "soon" is not a duration; allowed: Go durations like 500ms, 10s, 1m30s`},
		{"unknown key", "cluster:\n  nmae: a\n",
			"stoke.yaml:2: cluster.nmae: unknown key (did you mean name?); ..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			os.WriteFile("stoke.yaml", nil, 0o644)
			_, err := Parse("stoke.yaml", []byte(tt.text))
			if err == nil {
				t.Fatal("no error")
			}
			first := strings.SplitN(err.Error(), "\n", 2)[0]
			if prefix, ok := strings.CutSuffix(tt.want, "..."); ok {
				if !strings.HasPrefix(first, prefix) {
					t.Errorf("got  %s\nwant %s", err, tt.want)
				}
			} else if first != tt.want {
				t.Errorf("got  %s\nwant %s", err, tt.want)
			}
		})
	}
}
