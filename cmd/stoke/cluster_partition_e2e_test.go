package main_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// partitionNet is a network namespace for one node with two links to the
// host: one for cluster traffic (routes, the peer hop), which the test
// cuts, and one for the test's own requests, which stays up. The
// namespace is held by a process of the test's (no mount under
// /run/netns: other tests look for leaked mounts) and referred to by its
// /proc path.
type partitionNet struct {
	holder         *exec.Cmd
	nsPath, link   string
	hostIP, nodeIP string // cluster link
	clientIP       string // the node's address on the client link
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// inNS runs ip inside the namespace.
func (p *partitionNet) ip(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=" + p.nsPath, "ip"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip %s in the namespace: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newPartitionNet(t *testing.T) *partitionNet {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("STOKE_REQUIRE_CGROUPS") == "1" {
			t.Fatal("the partition test needs root (network namespaces)")
		}
		t.Skip("the partition test needs root (network namespaces)")
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:2])
	sub := int(b[2])%200 + 20
	p := &partitionNet{link: "spc" + id,
		hostIP: fmt.Sprintf("10.213.%d.1", sub), nodeIP: fmt.Sprintf("10.213.%d.2", sub), clientIP: fmt.Sprintf("10.214.%d.2", sub)}
	// The holder waits on its stdin, and exits when the test closes it.
	p.holder = exec.Command("unshare", "--net", "cat")
	stdin, err := p.holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		p.holder.Wait()
		exec.Command("ip", "link", "del", p.link).Run()
		exec.Command("ip", "link", "del", "spk"+id).Run()
	})
	pid := strconv.Itoa(p.holder.Process.Pid)
	p.nsPath = "/proc/" + pid + "/ns/net"
	self, _ := os.Readlink("/proc/self/ns/net")
	poll(t, 5*time.Second, "unshare to enter its namespace", func() bool {
		ns, err := os.Readlink(p.nsPath)
		return err == nil && ns != self
	})
	for _, l := range []struct{ host, peer, net string }{{p.link, "spcn" + id, "10.213"}, {"spk" + id, "spkn" + id, "10.214"}} {
		ipCmd(t, "link", "add", l.host, "type", "veth", "peer", "name", l.peer)
		ipCmd(t, "link", "set", l.peer, "netns", pid)
		ipCmd(t, "addr", "add", fmt.Sprintf("%s.%d.1/24", l.net, sub), "dev", l.host)
		ipCmd(t, "link", "set", l.host, "up")
		p.ip(t, "addr", "add", fmt.Sprintf("%s.%d.2/24", l.net, sub), "dev", l.peer)
		p.ip(t, "link", "set", l.peer, "up")
	}
	p.ip(t, "link", "set", "lo", "up")
	return p
}

// cut and heal take the cluster link down and up.
func (p *partitionNet) cut(t *testing.T)  { ipCmd(t, "link", "set", p.link, "down") }
func (p *partitionNet) heal(t *testing.T) { ipCmd(t, "link", "set", p.link, "up") }

// freePortIn is a port for addr inside the namespace, where nothing else
// listens: one free on the host is as good.
func freePortIn(t *testing.T, addr string) string {
	t.Helper()
	_, port, _ := strings.Cut(freePortOn(t, "127.0.0.1"), ":")
	return addr + ":" + port
}

func TestClusterPartition(t *testing.T) {
	pn := newPartitionNet(t)
	bin, hello := build(t)
	app := clusterApp(t, hello)
	root := t.TempDir()
	// hello is warm everywhere; other has no instance, so a request to it
	// needs a cold start.
	fns := strings.Replace(clusterFunctions(app, "hi", `  other:
    runtime: http
    cwd: `+app+`
    command: [./hello-bin]
    routes: [/other]
`), "max_instances: 4", "max_instances: 4\n    keep_warm: 3", 1)

	// n1 alone in the namespace; n2 and n3 on the host, their cluster
	// addresses on the host's end of the cluster link.
	type addr struct{ gw, admin, route, peer, advertise string }
	as := []addr{
		{freePortIn(t, pn.clientIP), freePortIn(t, pn.clientIP), freePortIn(t, pn.nodeIP), freePortIn(t, pn.nodeIP), pn.nodeIP},
		{freePortOn(t, "127.0.0.3"), freePortOn(t, "127.0.0.3"), freePortOn(t, pn.hostIP), freePortOn(t, pn.hostIP), pn.hostIP},
		{freePortOn(t, "127.0.0.4"), freePortOn(t, "127.0.0.4"), freePortOn(t, pn.hostIP), freePortOn(t, pn.hostIP), pn.hostIP},
	}
	routes := fmt.Sprintf("nats://%s, nats://%s, nats://%s", as[0].route, as[1].route, as[2].route)
	nodes := make([]*clusterNode, 3)
	var wg sync.WaitGroup
	for i, a := range as {
		dir := filepath.Join(root, fmt.Sprintf("n%d", i+1))
		os.MkdirAll(dir, 0o755)
		cfg := filepath.Join(dir, "stoke.yaml")
		text := fmt.Sprintf(`listen: %s
admin:
  listen: %s
  token: %s
  insecure_http: true
data_dir: data
gateway:
  timeout: 3s
  queue_size: 4
invoke_api: {auth: none}
cluster:
  name: part
  node: n%d
  listen: %s
  peer_listen: %s
  advertise: %s
  routes: [%s]
  secret: %s
%s`, a.gw, a.admin, clusterToken, i+1, a.route, a.peer, a.advertise, routes, clusterSecret, fns)
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			s := &stokeProc{t: t, bin: bin, cfg: cfg, gw: a.gw, out: &syncBuf{}}
			if i == 0 {
				// Only the network namespace: ip netns exec would also remount
				// /sys, hiding the cgroup hierarchies.
				s.cmd = exec.Command("nsenter", "--net="+pn.nsPath, bin, "serve", "-f", cfg)
			} else {
				s.cmd = exec.Command(bin, "serve", "-f", cfg)
			}
			s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
			if err := s.cmd.Start(); err != nil {
				t.Error(err)
				return
			}
			nodes[i] = &clusterNode{stokeProc: s, name: fmt.Sprintf("n%d", i+1), admin: a.admin}
			deadline := time.Now().Add(90 * time.Second)
			for !strings.Contains(s.out.String(), "stoke is serving") {
				if time.Now().After(deadline) {
					t.Errorf("n%d did not start:\n%s", i+1, s.out.String())
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, n := range nodes {
			if n != nil && n.cmd.ProcessState == nil {
				n.stop()
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	perNode := func(view *clusterNode) map[string]int {
		out := map[string]int{}
		for _, f := range view.functions(t) {
			for _, in := range f.Instances {
				if f.Name == "hello" {
					out[in.Node]++
				}
			}
		}
		return out
	}
	poll(t, 60*time.Second, "keep_warm 3: one instance per node", func() bool {
		c := perNode(n2)
		return c["n1"] == 1 && c["n2"] == 1 && c["n3"] == 1
	})

	pn.cut(t)
	cut := time.Now()

	// The majority (n2, n3) keeps JetStream's quorum: it loses n1 and
	// restores keep_warm 3 on its own nodes, serves, accepts Events.
	poll(t, 60*time.Second, "the majority to run keep_warm 3 without n1", func() bool {
		c := perNode(n2)
		return c["n1"] == 0 && c["n2"]+c["n3"] >= 3
	})
	t.Logf("majority restored keep_warm %s after the cut", time.Since(cut).Round(time.Millisecond))
	if code, node, body := n2.try("/hello"); code != 200 || (node != "n2" && node != "n3") {
		t.Errorf("majority GET /hello: %d %q %s", code, node, body)
	}
	if code, node, body := n2.try("/other"); code != 200 || (node != "n2" && node != "n3") {
		t.Errorf("majority cold start: %d %q %s", code, node, body)
	}
	evMajority := postEvent(t, n3, http.StatusAccepted)

	// The minority (n1) serves from its warm instance, refuses what needs
	// the cluster: a new instance, an Event, a deploy.
	if code, node, body := n1.try("/hello"); code != 200 || node != "n1" {
		t.Errorf("minority GET /hello (its warm instance): %d %q %s", code, node, body)
	}
	if code, node, body := n1.try("/other"); (code != 504 && code != 429) || node != "n1" {
		t.Errorf("minority request needing a new instance: %d %q %s (want 504 or 429: no quorum to count it)", code, node, body)
	}
	postEvent(t, n1, http.StatusInternalServerError)
	if out, err := n1.cli("deploy"); err == nil {
		t.Errorf("a deploy on the minority side succeeded:\n%s", out)
	}

	// Healed, n1 rejoins and takes Events again; nothing accepted is lost.
	pn.heal(t)
	var evHealed string
	poll(t, 60*time.Second, "n1 to accept Events again after the heal", func() bool {
		id, ok := tryEvent(t, n1)
		evHealed = id
		return ok
	})
	poll(t, 60*time.Second, "both accepted Events to succeed", func() bool {
		ok := map[string]bool{}
		for _, n := range nodes {
			for _, r := range n.records(t, "hello") {
				if r.Status == 200 {
					ok[r.RequestID] = true
				}
			}
		}
		return ok[evMajority] && ok[evHealed]
	})
	// And no Event is still queued or running anywhere (an ambiguous try of
	// the heal's poll may have been accepted too): one whose outcome is
	// still being stored when the test stops its nodes is cut off by the
	// shutdown, which exits 1 (its completion waited on the healed
	// cluster's elections for 10 s once).
	poll(t, 60*time.Second, "every accepted Event to finish", func() bool {
		for _, n := range nodes {
			for _, e := range n.events(t, "hello") {
				if e.Status == "queued" || e.Status == "running" {
					return false
				}
			}
		}
		return true
	})
}

// events lists fn's Event invocations the node keeps (the admin API).
func (n *clusterNode) events(t *testing.T, fn string) []struct{ Status string } {
	t.Helper()
	var evs []struct{ Status string }
	n.adminGet(t, "/v1/functions/"+fn+"/events?limit=1000", &evs)
	return evs
}

const eventPayload = `{"version":"2.0","rawPath":"/hello/ev","requestContext":{"http":{"method":"GET"}}}`

// tryEvent sends an Event invocation; ok says it was accepted (202).
func tryEvent(t *testing.T, n *clusterNode) (string, bool) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+n.gw+"/2015-03-31/functions/hello/invocations", strings.NewReader(eventPayload))
	req.Header.Set("X-Amz-Invocation-Type", "Event")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("X-Amzn-Requestid"), resp.StatusCode == http.StatusAccepted
}

// postEvent sends an Event invocation and checks its status.
func postEvent(t *testing.T, n *clusterNode, want int) string {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+n.gw+"/2015-03-31/functions/hello/invocations", strings.NewReader(eventPayload))
	req.Header.Set("X-Amz-Invocation-Type", "Event")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Errorf("Event on %s: %d, want %d", n.name, resp.StatusCode, want)
	}
	return resp.Header.Get("X-Amzn-Requestid")
}
