package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

var (
	flagClusterN       = flag.Int("cluster-n", 40, "cluster: cold starts per variant")
	flagClusterBaseBin = flag.String("cluster-base-bin", "", "cluster: a stoke binary (main's) whose own three-node cluster runs beside this build's, its warm and cold rows interleaved")
	flagMainBin        = flag.String("main-bin", "", "cluster, cold, lambda-cold, warm, lambda-warm -lambda-ab, django: a stoke binary built from main, whose rows (a single node; isolated cold starts; warm: a target of its own, and one for the Lambda-model function unless -warm-ab; django: the same functions, cold and warm) run in the same run, interleaved (default: none)")
)

// benchCluster: what cluster mode adds, against the same run's baselines,
// interleaved:
//   - a warm request served by an instance on another node (claim over
//     NATS + the HTTP hop) against one served by the node it reached;
//   - a cold start on a cluster node (a claim answered "no responders",
//     then the cluster-wide count's compare-and-swap) against a cold start
//     on a Stoke without cluster:;
//   - with -main-bin, single-node warm and cold of this build against
//     main's, both without cluster:;
//   - with -cluster-base-bin, a second three-node cluster of that binary
//     on 127.0.0.5-7: its local and remote warm rows and its cold row,
//     in the same rounds.
func benchCluster(ctx context.Context, e *env) error {
	// The function's own directory: a cluster node packs its cwd.
	app := filepath.Join(e.dir, "clusterapp")
	if err := os.MkdirAll(app, 0o755); err != nil {
		return err
	}
	// Two copies of hello, so the cold function's processes are told
	// apart from the warm one's.
	helloW, helloC := filepath.Join(app, "hello-w"), filepath.Join(app, "hello-c")
	for _, b := range []string{helloW, helloC} {
		if err := copyExec(e.hello, b); err != nil {
			return err
		}
	}
	fns := fmt.Sprintf(`functions:
  w:
    runtime: http
    cwd: %[1]s
    command: [%[2]s]
    memory: 1769
    keep_warm: 1
    max_instances: 1
    routes: [/w]
  c:
    runtime: http
    cwd: %[1]s
    command: [%[3]s]
    memory: 1769
    keep_warm: 0
    max_instances: 1
    idle_timeout: 1ms
    timeout: 10s
    routes: [/c]
`, app, helloW, helloC)
	const secret = "stokebench-cluster-secret-0123456789abcdef"
	// startCluster starts three nodes of bin on 127.0.0.<first>, +1, +2,
	// in directories <prefix>-n1 …
	startCluster := func(bin, prefix, name string, first int) ([]*stokeProc, error) {
		var routes []string
		var clusterCfgs []string
		for i := range 3 {
			host := fmt.Sprintf("127.0.0.%d", first+i)
			rp := freePortOn(host)
			routes = append(routes, fmt.Sprintf("nats://%s:%d", host, rp))
			clusterCfgs = append(clusterCfgs, fmt.Sprintf("cluster:\n  name: %s\n  node: n%d\n  listen: %s:%d\n  peer_listen: %s:%d\n  secret: %s\n",
				name, i+1, host, rp, host, freePortOn(host), secret))
		}
		cur := e.stoke
		e.stoke = bin
		defer func() { e.stoke = cur }()
		nodes := make([]*stokeProc, 3)
		errs := make([]error, 3)
		var wg sync.WaitGroup
		for i := range 3 {
			body := clusterCfgs[i] + "  routes: [" + strings.Join(routes, ", ") + "]\n" + fns
			wg.Go(func() {
				nodes[i], errs[i] = e.startStokeAt(ctx, fmt.Sprintf("%s-n%d", prefix, i+1), fmt.Sprintf("127.0.0.%d", first+i), body, 60*time.Second)
			})
		}
		wg.Wait()
		return nodes, errors.Join(errs...)
	}
	nodes, err := startCluster(e.stoke, "cluster", "bench", 2)
	for _, n := range nodes {
		if n != nil {
			defer n.stop()
		}
	}
	if err != nil {
		return err
	}
	// -cluster-base-bin: the same cluster of another build (main's), in
	// the same run, interleaved.
	var baseNodes []*stokeProc
	if *flagClusterBaseBin != "" {
		baseNodes, err = startCluster(*flagClusterBaseBin, "clusterbase", "benchbase", 5)
		for _, n := range baseNodes {
			if n != nil {
				defer n.stop()
			}
		}
		if err != nil {
			return err
		}
	}
	single, err := e.startStoke(ctx, "cluster-single", fns)
	if err != nil {
		return err
	}
	defer single.stop()
	var mainSingle *stokeProc
	if *flagMainBin != "" {
		cur := e.stoke
		e.stoke = *flagMainBin
		mainSingle, err = e.startStoke(ctx, "cluster-main", fns)
		e.stoke = cur
		if err != nil {
			return err
		}
		defer mainSingle.stop()
	}

	// Which node holds w's keep_warm instance: its gateway is "local",
	// another's "remote".
	local, remote, err := localRemote(nodes, "cluster-")
	if err != nil {
		return err
	}
	var baseLocal, baseRemote *stokeProc
	if baseNodes != nil {
		if baseLocal, baseRemote, err = localRemote(baseNodes, "clusterbase-"); err != nil {
			return err
		}
	}
	fmt.Printf("\n### cluster: warm request, c=1 (%d rounds × %d requests, interleaved)\n\n", *flagRounds, *flagReqs)
	ts := []target{{name: "local: the node holding the instance", url: local.gw + "/w"},
		{name: "remote: another node's gateway (claim + HTTP hop)", url: remote.gw + "/w"},
		{name: "single node, no cluster:", url: single.gw + "/w"}}
	if mainSingle != nil {
		ts = append(ts, target{name: "single node, main before cluster mode", url: mainSingle.gw + "/w"})
	}
	if baseLocal != nil {
		ts = append(ts, target{name: "-cluster-base-bin local: the node holding the instance", url: baseLocal.gw + "/w"},
			target{name: "-cluster-base-bin remote: another node's gateway", url: baseRemote.gw + "/w"})
	}
	lat, roundMed, err := c1Rounds(ctx, ts, *flagRounds, *flagReqs)
	if err != nil {
		return err
	}
	printC1(ts, lat, roundMed)
	// Every remote answer must have come from the other node's instance.
	resp, err := http.Get(remote.gw + "/w")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.Header.Get("X-Stoke-Node") == "" || strings.HasSuffix(remote.dir, "cluster-"+resp.Header.Get("X-Stoke-Node")) {
		return fmt.Errorf("the remote target was served by its own node (%q): not a hop", resp.Header.Get("X-Stoke-Node"))
	}

	fmt.Printf("\n### cluster: cold start (%d per variant, interleaved, instance reaped and stubs refilled before each)\n\n", *flagClusterN)
	type variant struct {
		name  string
		s     *stokeProc
		quiet []*stokeProc // servers to wait on before a start
	}
	vs := []variant{{"single node, no cluster:", single, []*stokeProc{single}}, {"cluster node (claim, then count CAS)", nodes[0], nodes}}
	if mainSingle != nil {
		vs = append(vs, variant{"single node, main before cluster mode", mainSingle, []*stokeProc{mainSingle}})
	}
	if baseNodes != nil {
		vs = append(vs, variant{"-cluster-base-bin cluster node (claim, then count CAS)", baseNodes[0], baseNodes})
	}
	stubs := map[*stokeProc]int{}
	for _, s := range append(append(append([]*stokeProc{single}, nodes...), baseNodes...), mainSingle) {
		if s == nil {
			continue
		}
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && stubs[s] < 2; time.Sleep(20 * time.Millisecond) {
			stubs[s] = max(stubs[s], s.idleStubs())
		}
	}
	client := &http.Client{Timeout: 20 * time.Second}
	res := make([][]time.Duration, len(vs))
	for i := 0; i < *flagClusterN; i++ {
		for j := range vs {
			v := vs[(i+j)%len(vs)]
			k := (i + j) % len(vs)
			for _, q := range v.quiet {
				if err := q.waitCold(ctx, "c", stubs[q], helloC); err != nil {
					return fmt.Errorf("%s: %w", v.name, err)
				}
			}
			time.Sleep(20 * time.Millisecond) // the machine settles, as in cold
			t0 := time.Now()
			resp, err := client.Get(v.s.gw + "/c")
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			d := time.Since(t0)
			if resp.StatusCode != 200 || resp.Header.Get("X-Stoke-Cold") != "true" {
				return fmt.Errorf("%s: %s cold=%s", v.name, resp.Status, resp.Header.Get("X-Stoke-Cold"))
			}
			res[k] = append(res[k], d)
		}
	}
	fmt.Printf("| variant | p50 | p99 | added p50 |\n|---|---|---|---|\n")
	for k, v := range vs {
		fmt.Printf("| %s | %s | %s | %s |\n", v.name, ms(pct(res[k], .5)), ms(pct(res[k], .99)), ms(pct(res[k], .5)-pct(res[0], .5)))
	}
	return nil
}

// localRemote finds which of a cluster's nodes (in directories
// <prefix>n1 …) holds w's keep_warm instance, and another node.
func localRemote(nodes []*stokeProc, prefix string) (local, remote *stokeProc, err error) {
	for deadline := time.Now().Add(30 * time.Second); local == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("no node reports w's keep_warm instance")
		}
		for _, n := range nodes {
			resp, err := http.Get(n.gw + "/w")
			if err != nil {
				return nil, nil, err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			node := resp.Header.Get("X-Stoke-Node")
			if strings.HasSuffix(n.dir, prefix+node) && local == nil {
				local = n
			}
		}
	}
	for _, n := range nodes {
		if n != local {
			return local, n, nil
		}
	}
	return nil, nil, fmt.Errorf("one node only")
}

func freePortOn(host string) int {
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitCold waits until fn has no instance (in a cluster: on any node), no
// process of bin (or of a node's unpacked copy of it) is alive, and the
// node holds stubs idle sandbox stubs.
func (s *stokeProc) waitCold(ctx context.Context, fn string, stubs int, bin string) error {
	arts, _ := filepath.Glob(filepath.Join(s.dir, "data.artifacts", fn, "*", filepath.Base(bin)))
	deadline := time.Now().Add(20 * time.Second)
	for {
		fs, err := s.functions()
		if err != nil {
			return err
		}
		p := len(procsUsing(bin))
		for _, a := range arts {
			p += len(procsUsing(a))
		}
		if len(fs[fn].Instances) == 0 && p == 0 && s.idleStubs() >= stubs {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not cold after 20 s: %d instances, %d processes, %d of %d stubs", fn, len(fs[fn].Instances), p, s.idleStubs(), stubs)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func copyExec(src, dst string) error {
	out, err := exec.Command("cp", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp %s: %v: %s", src, err, out)
	}
	return nil
}
