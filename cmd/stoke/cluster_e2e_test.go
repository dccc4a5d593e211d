package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
invoke_api: {auth: none}
cluster:
  name: e2e
  node: n%d
  listen: %s
  peer_listen: %s
  routes: [%s]
  secret: %s
  # Claims wait up to a second: these tests check where requests are
  # served, and a loaded machine answers a claim in more than the 30 ms
  # default (past which a gateway cold-starts locally, by design; the
  # claim's latency is the benchmark's matter).
  claim_timeout: 1s
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
		if t.Failed() {
			for _, n := range nodes {
				t.Logf("%s's output:\n%s", n.name, n.out.String())
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

	// Version 1's instances, by the unpacked files they run from.
	var v1Dirs []string
	running := func(dirs []string) []string {
		var ps []string
		for _, d := range dirs {
			ps = append(ps, procsUnder(d+"/")...)
		}
		return ps
	}
	for _, n := range nodes {
		dirs, _ := filepath.Glob(filepath.Join(filepath.Dir(n.cfg), "data.artifacts", "hello", "*"))
		v1Dirs = append(v1Dirs, dirs...)
	}
	if len(running(v1Dirs)) == 0 {
		t.Fatalf("no instance of version 1 runs from %v", v1Dirs)
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
		poll(t, 60*time.Second, n.name+" to run version 2", func() bool {
			code, _, body := n.try("/hello")
			return code == 200 && strings.Contains(body, "two from hello (version 2,")
		})
	}
	// Every node drained version 1: its instances are gone.
	poll(t, 60*time.Second, "version 1's instances to stop on every node", func() bool { return len(running(v1Dirs)) == 0 })

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

	// The peer listener, reachable by anyone who reaches the node, has the
	// gateway's limits: headers beyond twice the gateway's are refused
	// before any handler runs (without the limit, net/http reads 1 MB).
	peer := strings.TrimSpace(strings.Split(strings.SplitN(mustRead(t, cfgs[0]), "peer_listen:", 2)[1], "\n")[0])
	req, _ := http.NewRequest("GET", "http://"+peer+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("b", 200<<10))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("200 KB of headers to the peer listener %s: %v %v, want 431", peer, resp, err)
	} else {
		resp.Body.Close()
	}

	// A node restarting with an older file (n3's still says GREETING one)
	// leaves the cluster's newer version as it is, and says so.
	n3 := nodes[2]
	n3.stop()
	n3.stokeProc = startStoke(t, bin, n3.cfg, n3.gw)
	poll(t, 60*time.Second, "n3 back, serving the cluster's version 2", func() bool {
		code, _, body := n3.try("/hello")
		return code == 200 && strings.Contains(body, "two from hello (version 2,")
	})
	if !strings.Contains(n3.out.String(), "the cluster runs version 2") {
		t.Errorf("n3 booted with an older file and did not say it runs the cluster's version:\n%s", n3.out.String())
	}
	for _, n := range nodes[:2] {
		if code, _, body := n.try("/hello"); code != 200 || !strings.Contains(body, "two from hello (version 2,") {
			t.Errorf("%s after n3 booted with an older file: %d %s", n.name, code, body)
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
	// With a response cache: hello's answers have no freshness unless
	// asked (?max-age=N), so only the cache's own checks below are hits.
	cfgs := writeClusterConfigs(t, t.TempDir(), 3, clusterFunctions(app, "hi", "    cache: {max_bytes: 1MB}\n"))
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

	// One view from any node: instances, invocations, logs, cost and
	// metrics of the whole cluster, each naming its node.
	n3 := nodes[2]
	out, err := n3.cli("ls")
	if err != nil || !regexp.MustCompile(`(?m)^NODE\s+FUNCTION\s+INSTANCE`).MatchString(out) || !regexp.MustCompile(`(?m)^n1\s+hello\s+\w+\s+idle`).MatchString(out) {
		t.Errorf("stoke ls on n3: %v\n%s", err, out)
	}
	// Records and log lines are written in batches after the responses:
	// poll until the three requests are in.
	cliUntil(t, n3, "stoke invocations on n3 (one record on each node, the remote ones naming n1's instance)", func(out string) bool {
		return strings.Contains(out, "NODE") && strings.Count(out, " n1\n")+strings.Count(out, " n2\n")+strings.Count(out, " n3\n") == 3 &&
			strings.Contains(out, " n1\n") && strings.Contains(out, " n2\n")
	}, "invocations", "hello")
	// Traces: n1's cold start, recorded on n1, drawn by n3; n3's list of
	// hello's traces has every node's.
	firstID := resp.Header.Get("X-Request-Id")
	cliUntil(t, n3, "stoke trace on n3 of the cold start recorded on n1", func(out string) bool {
		return strings.Contains(out, `"request_id": "`+firstID+`"`) && strings.Contains(out, `"name": "init"`) && strings.Contains(out, `"name": "invoke"`)
	}, "trace", "--json", firstID)
	type traceID struct {
		RequestID string `json:"request_id"`
	}
	var traces []traceID
	req, _ := http.NewRequest("GET", "http://"+n3.admin+"/v1/functions/hello/traces", nil)
	req.Header.Set("Authorization", "Bearer "+clusterToken)
	tresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(tresp.Body).Decode(&traces)
	tresp.Body.Close()
	if err != nil || len(traces) != 3 || !slices.Contains(traces, traceID{firstID}) {
		t.Errorf("hello's traces on n3: %v %+v, want the three requests' (n1's %s among them)", err, traces, firstID)
	}
	cliUntil(t, nodes[1], "stoke logs on n2 (n1's instance lines, n2's and n3's invocation lines)", func(out string) bool {
		return strings.Contains(out, " n1 INSTANCE ") && strings.Contains(out, " n2 START RequestId: ") && strings.Contains(out, " n3 REPORT RequestId: ")
	}, "logs", "hello")
	cliUntil(t, nodes[1], "stoke cost on n2 (three invocations in the cluster)", func(out string) bool {
		return regexp.MustCompile(`hello\s+3\s`).MatchString(out)
	}, "cost", "hello")
	// /metrics on n3: every node's count, each with its node label.
	var metrics []byte
	counted := func() bool {
		req, _ := http.NewRequest("GET", "http://"+n3.admin+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+clusterToken)
		mresp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ = io.ReadAll(mresp.Body)
		mresp.Body.Close()
		for _, node := range []string{"n1", "n2", "n3"} {
			if !regexp.MustCompile(`stoke_invocations_total\{[^}]*function="hello"[^}]*node="` + node + `"[^}]*\} 1`).Match(metrics) {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(15 * time.Second); !counted(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("/metrics on n3 does not count one invocation of hello on each of n1, n2, n3:\n%s", metrics)
			break
		}
	}

	// The response cache: every gateway keeps its own (n2's stores the
	// answer of n1's instance); stoke ls on any node shows their sum, and
	// a purge through any node empties every node's.
	for _, n := range nodes[:2] {
		resp, _ := n.getH(t, "/hello/c?max-age=60")
		if cs := resp.Header.Get("Cache-Status"); !strings.Contains(cs, "stored") {
			t.Fatalf("%s: first GET /hello/c: Cache-Status %q", n.name, cs)
		}
		// A hit is answered by the node whose cache holds it.
		if resp, _ = n.getH(t, "/hello/c?max-age=60"); !strings.HasPrefix(resp.Header.Get("Cache-Status"), "stoke; hit;") ||
			!slices.Equal(resp.Header.Values("X-Stoke-Node"), []string{n.name}) {
			t.Fatalf("%s: second GET /hello/c: Cache-Status %q, X-Stoke-Node %q", n.name, resp.Header.Get("Cache-Status"), resp.Header.Values("X-Stoke-Node"))
		}
	}
	// 2 hits; 5 misses: the three requests above, and the two stored.
	out, err = n3.cli("ls")
	if err != nil || !regexp.MustCompile(`(?m)^hello\s+.+ / 3MB\s+2\s+29%\s+2\s+0\s+0\s+0\s+5\s+0\s+0\s*$`).MatchString(out) {
		t.Errorf("stoke ls on n3: the cluster's cache (1MB on each of 3 nodes, 2 entries, 2 hits, 5 misses):\n%v\n%s", err, out)
	}
	if out, err := n3.cli("cache", "purge", "hello", "--path", "/hello/c"); err != nil || !strings.Contains(out, "purged 2 entries") {
		t.Fatalf("purge through n3: %v\n%s", err, out)
	}
	for _, n := range nodes[:2] {
		if resp, _ := n.getH(t, "/hello/c?max-age=60"); !strings.HasPrefix(resp.Header.Get("Cache-Status"), "stoke; fwd=uri-miss;") {
			t.Errorf("%s after the purge through n3: Cache-Status %q", n.name, resp.Header.Get("Cache-Status"))
		}
	}
}

// cliUntil runs the CLI against n until its output satisfies ok, and
// fails the test with the last output after 15 s.
func cliUntil(t *testing.T, n *clusterNode, what string, ok func(string) bool, args ...string) {
	t.Helper()
	var out string
	var err error
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err = n.cli(args...)
		if err == nil && ok(out) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: %v\n%s", what, err, out)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitOffered polls the node's admin API until it offers an idle instance
// of fn to the other nodes.
func (n *clusterNode) waitOffered(t *testing.T, fn string) {
	t.Helper()
	poll(t, 60*time.Second, n.name+" to offer "+fn, func() bool {
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

// clusterInstances counts the live instances of fn on each node, from the
// cluster's view on the first node still running.
func clusterInstances(t *testing.T, nodes []*clusterNode, fn string) map[string]int {
	out := map[string]int{}
	for _, n := range nodes {
		if n.cmd.ProcessState != nil {
			continue
		}
		for _, f := range n.functions(t) {
			if f.Name == fn {
				for _, in := range f.Instances {
					out[in.Node]++
				}
			}
		}
		return out
	}
	return out
}

func sum(m map[string]int) int {
	t := 0
	for _, v := range m {
		t += v
	}
	return t
}

func TestClusterLimitsAndNodeLoss(t *testing.T) {
	bin, hello := build(t)
	app := clusterApp(t, hello)
	fns := strings.Replace(clusterFunctions(app, "hi", ""), "max_instances: 4", "max_instances: 3\n    keep_warm: 2\n    idle_timeout: 1s", 1)
	cfgs := writeClusterConfigs(t, t.TempDir(), 3, fns)
	nodes := startCluster(t, bin, cfgs)

	// keep_warm 2 means two instances in the cluster, on two nodes.
	var warm map[string]int
	poll(t, 60*time.Second, "two keep_warm instances in the cluster", func() bool {
		warm = clusterInstances(t, nodes, "hello")
		return sum(warm) == 2
	})
	for node, c := range warm {
		if c > 1 {
			t.Errorf("keep_warm 2 not spread: %v (node %s has %d)", warm, node, c)
		}
	}

	// max_instances 3 holds for the whole cluster under load from all three
	// gateways: no more than 3 distinct instances ever serve at once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for i := range 12 {
		n := nodes[i%3]
		wg.Go(func() {
			for range 4 {
				code, _, _ := n.try("/hello/sleep?ms=150")
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if codes[200] == 0 || codes[200]+codes[429] != 48 {
		t.Errorf("answers under load: %v (want 200s and at most 429s)", codes)
	}
	if c := clusterInstances(t, nodes, "hello"); sum(c) > 3 {
		out, _ := nodes[0].cli("ls")
		t.Errorf("%d instances after the load (%v); max_instances is 3\n%s", sum(c), c, out)
	}
	if peak := peakInstances(t, nodes, "hello"); peak > 3 || peak < 2 {
		t.Errorf("%d distinct instances served at once across the cluster; max_instances is 3", peak)
	}

	// Instances beyond keep_warm are reaped after idle_timeout, down to
	// keep_warm 2 in the cluster.
	poll(t, 60*time.Second, "the cluster back at keep_warm 2", func() bool {
		warm = clusterInstances(t, nodes, "hello")
		return sum(warm) == 2
	})

	// kill -9 of a node holding a keep_warm instance: the others restore
	// keep_warm 2 within seconds, and keep serving.
	var victim *clusterNode
	for _, n := range nodes {
		if warm[n.name] > 0 && n != nodes[0] {
			victim = n
		}
	}
	if victim == nil {
		t.Fatalf("no keep_warm instance on n2 or n3: %v", warm)
	}
	// Event invocations accepted by every node, each taking a second:
	// the victim's workers hold some when it dies.
	var events []string
	payload := `{"version":"2.0","rawPath":"/hello/sleep","rawQueryString":"ms=1000","requestContext":{"http":{"method":"GET"}}}`
	for i := range 9 {
		n := nodes[i%3]
		req, _ := http.NewRequest("POST", "http://"+n.gw+"/2015-03-31/functions/hello/invocations", strings.NewReader(payload))
		req.Header.Set("X-Amz-Invocation-Type", "Event")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("Event on %s: %d", n.name, resp.StatusCode)
		}
		events = append(events, resp.Header.Get("X-Amzn-Requestid"))
	}
	oldPid := victim.cmd.Process.Pid
	victim.cmd.Process.Kill()
	victim.cmd.Wait()
	killed := time.Now()
	// Its instances outlive it (kill -9 gives Stoke no chance to stop
	// them): the restart below must sweep them.
	orphans := procsUnder(filepath.Dir(victim.cfg))
	var rest []*clusterNode
	for _, n := range nodes {
		if n != victim {
			rest = append(rest, n)
		}
	}
	defer func() {
		if t.Failed() {
			for _, n := range rest {
				t.Logf("%s:\n%s", n.name, n.out.String())
			}
		}
	}()
	poll(t, 60*time.Second, "keep_warm restored on the surviving nodes", func() bool {
		idle := 0
		for _, f := range rest[0].functions(t) {
			for _, in := range f.Instances {
				if f.Name == "hello" && in.State == "idle" && in.Node != victim.name {
					idle++
				}
			}
		}
		return idle >= 2
	})
	t.Logf("keep_warm restored %s after kill -9 of %s", time.Since(killed).Round(time.Millisecond), victim.name)
	for _, n := range rest {
		if code, _, body := n.try("/hello"); code != 200 {
			t.Errorf("%s after %s was killed: %d %s", n.name, victim.name, code, body)
		}
	}
	// No accepted event is lost: each succeeds on a surviving node (the
	// victim's were handed to them after JetStream's ack wait).
	poll(t, 60*time.Second, "every Event invocation to succeed on the surviving nodes", func() bool {
		ok := map[string]bool{}
		for _, n := range rest {
			for _, r := range n.records(t, "hello") {
				if r.Status == 200 {
					ok[r.RequestID] = true
				}
			}
		}
		for _, id := range events {
			if !ok[id] {
				return false
			}
		}
		return true
	})
	// The killed node restarted on the same data_dir: it sweeps what its
	// previous process left (the instances in that process's cgroups),
	// rejoins and serves; the cleanup's stop checks it leaves nothing.
	victim.stokeProc = startStoke(t, bin, victim.cfg, victim.gw)
	for _, h := range []string{"memory", "cpu", "pids"} {
		if p := filepath.Join("/sys/fs/cgroup", h, "stoke", strconv.Itoa(oldPid)); exists(p) {
			t.Errorf("the killed node's cgroup is still there after its restart: %s", p)
		}
	}
	for _, o := range orphans {
		pid := strings.Fields(o)[0]
		if exe, err := os.Readlink("/proc/" + pid + "/exe"); err == nil && exe == strings.Fields(o)[1] {
			t.Errorf("the killed node's instance %s is still alive after its restart", o)
			syscallKill(pid)
		}
	}
	poll(t, 60*time.Second, victim.name+" back in the cluster (serving, and seeing the others' instances)", func() bool {
		code, node, _ := victim.try("/hello")
		others := 0
		for n, c := range clusterInstances(t, []*clusterNode{victim}, "hello") {
			if n != victim.name {
				others += c
			}
		}
		return code == 200 && node != "" && others > 0
	})
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

type e2eRecord struct {
	RequestID           string
	InstanceID          string
	Status              int
	Start               time.Time
	QueueMS, DurationMS float64
}

// records is the node's invocations of fn (its own SQLite only).
func (n *clusterNode) records(t *testing.T, fn string) []e2eRecord {
	t.Helper()
	var recs []e2eRecord
	n.adminGet(t, "/v1/functions/"+fn+"/invocations?limit=1000&local=1", &recs)
	return recs
}

// adminGet decodes the JSON answer to GET path on the node's admin API.
func (n *clusterNode) adminGet(t *testing.T, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+n.admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+clusterToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s on %s: %v", path, n.name, err)
	}
}

// peakInstances is the largest number of distinct instances whose
// invocations overlap in time, over every node's records.
func peakInstances(t *testing.T, nodes []*clusterNode, fn string) int {
	type span struct {
		inst       string
		start, end time.Time
	}
	var spans []span
	for _, n := range nodes {
		for _, r := range n.records(t, fn) {
			if r.InstanceID == "" {
				continue
			}
			// Remote instances are named node/id on the record.
			id := r.InstanceID
			if _, after, ok := strings.Cut(id, "/"); ok {
				id = after
			}
			s := r.Start.Add(time.Duration(r.QueueMS * float64(time.Millisecond)))
			spans = append(spans, span{id, s, s.Add(time.Duration(r.DurationMS * float64(time.Millisecond)))})
		}
	}
	peak := 0
	for _, a := range spans {
		at := map[string]bool{}
		for _, b := range spans {
			if !b.start.After(a.start) && b.end.After(a.start) {
				at[b.inst] = true
			}
		}
		peak = max(peak, len(at))
	}
	return peak
}

func syscallKill(pid string) {
	if p, err := strconv.Atoi(pid); err == nil {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}
