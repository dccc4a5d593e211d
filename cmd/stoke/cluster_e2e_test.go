package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/admin"
)

// A cluster on one machine: real stoke binaries on 127.0.0.2, .3 and .4,
// each with its own data_dir (and, being its own process, its own cgroup
// subtree), joined by their embedded NATS servers.

const clusterSecret = "e2e-cluster-secret-0123456789abcdef0123456789"
const clusterToken = "e2e-admin-token-0123456789abcdef0123456789"

type clusterNode struct {
	*stokeProc
	name, host, admin string
}

// freePortOn returns a free host:port on host.
func freePortOn(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// clusterApp makes the shared function directory: every node's file
// names the same cwd, so all three compute the same fingerprint.
func clusterApp(t *testing.T, hello string) string {
	app := filepath.Join(t.TempDir(), "app")
	if err := os.Mkdir(app, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, hello, filepath.Join(app, "hello-src"))
	return app
}

// clusterFunctions is the functions: block the nodes boot with.
func clusterFunctions(app, greeting, extra string) string {
	return fmt.Sprintf(`functions:
  hello:
    runtime: http
    cwd: %s
    build: cp ./hello-src ./hello-bin.new && mv ./hello-bin.new ./hello-bin
    command: [./hello-bin]
    memory: 128
    timeout: 2s
    max_instances: 4
    routes: [/hello, /hello/*]
    env: {GREETING: %s}
%s`, app, greeting, extra)
}

// writeClusterConfigs writes one config per node under root/nN.
func writeClusterConfigs(t *testing.T, root string, n int, functions string) []string {
	t.Helper()
	type addrs struct{ gw, admin, route, peer string }
	var as []addrs
	var routes []string
	for i := range n {
		host := fmt.Sprintf("127.0.0.%d", i+2)
		a := addrs{freePortOn(t, host), freePortOn(t, host), freePortOn(t, host), freePortOn(t, host)}
		as = append(as, a)
		routes = append(routes, "nats://"+a.route)
	}
	var cfgs []string
	for i, a := range as {
		dir := filepath.Join(root, fmt.Sprintf("n%d", i+1))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cfg := fmt.Sprintf(`listen: %s
admin:
  listen: %s
  token: %s
data_dir: data
gateway:
  timeout: 5s
cluster:
  name: e2e
  node: n%d
  listen: %s
  peer_listen: %s
  routes: [%s]
  secret: %s
%s`, a.gw, a.admin, clusterToken, i+1, a.route, a.peer, strings.Join(routes, ", "), clusterSecret, functions)
		p := filepath.Join(dir, "stoke.yaml")
		if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, p)
	}
	return cfgs
}

// startCluster starts a node per config, side by side (each waits for the
// others to form JetStream's quorum), and stops them at the end.
func startCluster(t *testing.T, bin string, cfgs []string) []*clusterNode {
	t.Helper()
	nodes := make([]*clusterNode, len(cfgs))
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		host := fmt.Sprintf("127.0.0.%d", i+2)
		text := mustRead(t, cfg)
		gw := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(text, "\n", 2)[0], "listen:"))
		adm := strings.TrimSpace(strings.Split(strings.SplitN(text, "admin:\n  listen:", 2)[1], "\n")[0])
		wg.Go(func() {
			nodes[i] = &clusterNode{stokeProc: startStoke(t, bin, cfg, gw), name: fmt.Sprintf("n%d", i+1), host: host, admin: adm}
		})
	}
	wg.Wait()
	if t.Failed() {
		for _, n := range nodes {
			if n != nil {
				n.stop()
			}
		}
		t.FailNow()
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			if n != nil && n.cmd.ProcessState == nil {
				n.stop()
			}
		}
	})
	return nodes
}

// poll waits until cond holds, failing the test after d.
func poll(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// getOK is GET path on the node's gateway: status, X-Stoke-Node, body.
func (n *clusterNode) try(path string) (int, string, string) {
	resp, err := http.Get("http://" + n.gw + path)
	if err != nil {
		return 0, "", err.Error()
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		k, err := resp.Body.Read(buf)
		b.Write(buf[:k])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, resp.Header.Get("X-Stoke-Node"), b.String()
}

func TestClusterFunctionsAreClusterState(t *testing.T) {
	bin, hello := build(t)
	root := t.TempDir()
	app := clusterApp(t, hello)
	cfgs := writeClusterConfigs(t, root, 3, clusterFunctions(app, "one", ""))
	nodes := startCluster(t, bin, cfgs)

	// Three nodes booting the same file make one version, each running
	// it from its own copy of the built files.
	for _, n := range nodes {
		code, node, body := n.try("/hello")
		if code != 200 || node == "" || !strings.Contains(body, "one from hello (version 1,") {
			t.Fatalf("%s: GET /hello: %d node %q: %s", n.name, code, node, body)
		}
		arts, _ := filepath.Glob(filepath.Join(filepath.Dir(n.cfg), "data.artifacts", "hello", "*", "hello-bin"))
		if len(arts) != 1 {
			t.Errorf("%s: want one unpacked artifact of hello, found %v", n.name, arts)
		}
	}

	// A deploy on one node reaches the others.
	two := strings.Replace(mustRead(t, cfgs[0]), "GREETING: one", "GREETING: two", 1)
	if err := os.WriteFile(cfgs[0], []byte(two), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := nodes[0].cli("deploy"); err != nil || !strings.Contains(out, "hello") {
		t.Fatalf("deploy on n1: %v\n%s", err, out)
	}
	for _, n := range nodes {
		poll(t, 20*time.Second, n.name+" to run version 2", func() bool {
			code, _, body := n.try("/hello")
			return code == 200 && strings.Contains(body, "two from hello (version 2,")
		})
	}

	// A failed build changes nothing anywhere.
	bad := strings.Replace(two, "GREETING: two", "GREETING: three", 1)
	bad = strings.Replace(bad, "cp ./hello-src", "false && cp ./hello-src", 1)
	if err := os.WriteFile(cfgs[1], []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := nodes[1].cli("deploy"); err == nil || !strings.Contains(out, "Nothing was deployed") {
		t.Fatalf("a failing build deployed: %v\n%s", err, out)
	}
	for _, n := range nodes {
		if code, _, body := n.try("/hello"); code != 200 || !strings.Contains(body, "two from hello (version 2,") {
			t.Errorf("%s after a failed build: %d %s", n.name, code, body)
		}
	}
}

// getH is GET path on the node's gateway, with the response's fields.
func (n *clusterNode) getH(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get("http://" + n.gw + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestClusterFirstFreeServes(t *testing.T) {
	bin, hello := build(t)
	app := clusterApp(t, hello)
	cfgs := writeClusterConfigs(t, t.TempDir(), 3, clusterFunctions(app, "hi", ""))
	nodes := startCluster(t, bin, cfgs)

	// A cold start on n1; then a request through n2's gateway is served by
	// n1's idle instance instead of a cold start on n2.
	resp, body := nodes[0].getH(t, "/hello")
	if resp.StatusCode != 200 || resp.Header.Get("X-Stoke-Node") != "n1" || resp.Header.Get("X-Stoke-Cold") != "true" {
		t.Fatalf("first request on n1: %d node %q cold %q: %s", resp.StatusCode, resp.Header.Get("X-Stoke-Node"), resp.Header.Get("X-Stoke-Cold"), body)
	}
	nodes[0].waitOffered(t, "hello")
	for _, n := range nodes[1:] {
		resp, body := n.getH(t, "/hello/x?y=1")
		if resp.StatusCode != 200 || !strings.Contains(body, "GET /hello/x") || resp.Header.Get("X-Stoke-Node") != "n1" || resp.Header.Get("X-Stoke-Cold") != "false" {
			t.Fatalf("%s: %d node %q cold %q: %s\n%s", n.name, resp.StatusCode, resp.Header.Get("X-Stoke-Node"), resp.Header.Get("X-Stoke-Cold"), body, n.out.String())
		}
	}
}

// waitOffered polls the node's admin API until it offers an idle instance
// of fn to the other nodes.
func (n *clusterNode) waitOffered(t *testing.T, fn string) {
	t.Helper()
	poll(t, 10*time.Second, n.name+" to offer "+fn, func() bool {
		for _, f := range n.functions(t) {
			if f.Name == fn && f.Offered {
				return true
			}
		}
		return false
	})
}

// functions is GET /v1/functions on the node's admin API.
func (n *clusterNode) functions(t *testing.T) []admin.FunctionInfo {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+n.admin+"/v1/functions", nil)
	req.Header.Set("Authorization", "Bearer "+clusterToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var fs []admin.FunctionInfo
	if err := json.NewDecoder(resp.Body).Decode(&fs); err != nil {
		t.Fatal(err)
	}
	return fs
}
