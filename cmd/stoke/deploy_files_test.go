package main_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stokehq/stoke/internal/config"
)

// TestShippedClusterConfigs parses the configs under deploy/ (systemd's
// and the one in the Kubernetes ConfigMap), so docs/cluster.md's files
// stay valid.
func TestShippedClusterConfigs(t *testing.T) {
	t.Setenv("STOKE_CLUSTER_SECRET", strings.Repeat("s", 64))
	t.Setenv("STOKE_ADMIN_TOKEN", strings.Repeat("t", 48))
	t.Setenv("POD_NAME", "stoke-1")
	t.Setenv("POD_NAMESPACE", "default")
	sys, err := os.ReadFile("../../deploy/systemd/stoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The function's cwd is /srv/hello on the machines: any existing
	// directory stands in for it here.
	sysText := strings.ReplaceAll(string(sys), "/srv/hello", t.TempDir())
	cfg, err := config.Parse("deploy/systemd/stoke.yaml", []byte(sysText))
	if err != nil {
		t.Fatalf("deploy/systemd/stoke.yaml: %v", err)
	}
	if c := cfg.Cluster; c == nil || c.Replicas != 3 || c.PeerListen != "10.0.0.1:6223" || c.Advertise != "10.0.0.1" {
		t.Errorf("systemd config's cluster: %+v", c)
	}
	k8s, err := os.ReadFile("../../deploy/k8s/stoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(k8s), "  stoke.yaml: |\n")
	if !ok {
		t.Fatal("deploy/k8s/stoke.yaml has no stoke.yaml in its ConfigMap")
	}
	var lines []string
	for _, l := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(l, "    ") && l != "" {
			break
		}
		lines = append(lines, strings.TrimPrefix(l, "    "))
	}
	cfg, err = config.Parse("configmap/stoke.yaml", []byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatalf("the ConfigMap's stoke.yaml: %v", err)
	}
	if c := cfg.Cluster; c == nil || c.Node != "stoke-1" || c.Replicas != 3 || c.Advertise != "stoke-1.stoke-cluster.default.svc.cluster.local" {
		t.Errorf("k8s config's cluster: %+v", c)
	}
}
