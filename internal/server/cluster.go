package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/cluster"
	"github.com/stokehq/stoke/internal/config"
)

// clusterState is what a clustered server keeps beside its node.
type clusterState struct {
	stop context.CancelFunc // ends the loop following the cluster's functions
	wg   sync.WaitGroup
	// peer serves the node-to-node hop of claimed requests.
	peerLn  net.Listener
	peerSrv *http.Server
}

// joinCluster starts the node, deploys the functions of the node's file
// the cluster does not have yet, runs what the cluster runs and follows
// its changes.
func (s *Server) joinCluster(ctx context.Context, cfg *config.Config, yaml []byte) error {
	s.log.Info("joining the cluster", "cluster", cfg.Cluster.Name, "node", cfg.Cluster.Node, "replicas", cfg.Cluster.Replicas)
	n, err := cluster.Start(ctx, cluster.Options{Config: cfg.Cluster, DataDir: cfg.DataDir, Logger: s.log})
	if err != nil {
		return err
	}
	s.node = n
	if err := s.serveViews(); err != nil {
		return fmt.Errorf("cluster: answering views: %w", err)
	}
	// keep_warm is shared among the nodes seen alive: see the configured
	// peers first (their heartbeats follow the quorum within a beat or
	// two), so a boot does not start every keep_warm instance here.
	peers := 1
	for _, r := range cfg.Cluster.Routes {
		if u, err := url.Parse(r); err == nil && u.Host != cfg.Cluster.Listen {
			peers++
		}
	}
	for deadline := time.Now().Add(3 * time.Second); len(n.Alive()) < peers && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if s.clus.peerLn, err = net.Listen("tcp", cfg.Cluster.PeerListen); err != nil {
		return fmt.Errorf("cluster: listening on %s (cluster.peer_listen): %w", cfg.Cluster.PeerListen, err)
	}
	tc, err := n.PeerTLS()
	if err != nil {
		return err
	}
	// The peer listener is reachable by anyone who can reach the node: the
	// same head and idle timeouts as the gateway's. Its headers may be twice
	// the gateway's: a hop carries a request the gateway accepted, plus its
	// own.
	s.clus.peerSrv = newHTTPServer(n.PeerHandler())
	s.clus.peerSrv.MaxHeaderBytes = 2 * maxHeaderBytes
	s.clus.peerSrv.TLSConfig = tc
	ln := s.clus.peerLn
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	go s.clus.peerSrv.Serve(ln)
	_, port, _ := net.SplitHostPort(s.clus.peerLn.Addr().String())
	n.SetPeer(net.JoinHostPort(cfg.Cluster.Advertise, port))
	res, err := s.deployCluster(ctx, cfg, yaml, true)
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		s.log.Warn(w)
	}
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.clus.stop = stop
	s.clus.wg.Go(func() { s.followCluster(lctx) })
	s.clus.wg.Go(func() { s.spreadKeepWarm(lctx) })
	return nil
}

// spreadKeepWarm gives each pool this node's share of its function's
// keep_warm whenever a node joins or is lost: a lost node's keep_warm
// instances are started on the others.
func (s *Server) spreadKeepWarm(ctx context.Context) {
	changed, stop := s.node.WatchMembers()
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		alive := s.node.Alive()
		s.mu.Lock()
		for name, d := range s.fns {
			d.pool.SetKeepWarm(cluster.KeepWarmShare(name, s.node.Name(), d.cfg.KeepWarm, alive))
		}
		s.mu.Unlock()
	}
}

// leaveCluster stops following the cluster and leaves it.
func (s *Server) leaveCluster() {
	if s.clus.stop != nil {
		s.clus.stop()
		s.clus.wg.Wait()
	}
	if s.clus.peerSrv != nil {
		_ = s.clus.peerSrv.Close()
	} else if s.clus.peerLn != nil {
		s.clus.peerLn.Close()
	}
	if s.node != nil {
		s.node.Close()
	}
}

// nodeHeader says on every gateway response which node answered; a
// request served by another node's instance carries that node's name.
func (s *Server) nodeHeader(next http.Handler) http.Handler {
	if s.node == nil {
		return next
	}
	name := s.node.Name()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Stoke-Node", name)
		next.ServeHTTP(w, r)
	})
}

// deployCluster deploys cfg's functions to the whole cluster: the changed
// ones are built here and their files stored, this node runs the result
// first (a failed build or start changes nothing anywhere), then the
// definitions are stored and every other node follows. At boot only the
// functions the cluster lacks are deployed, and none is removed: a node
// restarting with an older file must not undo a newer deploy.
func (s *Server) deployCluster(ctx context.Context, cfg *config.Config, yaml []byte, boot bool) (*admin.DeployResult, error) {
	unlock, err := s.node.LockDeploys(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	s.deployMu.Lock()
	defer s.deployMu.Unlock()
	defs, err := s.node.Definitions(ctx)
	if err != nil {
		return nil, err
	}
	var warnings []string
	var changed []*config.Function
	var removed []*cluster.Definition
	for _, name := range sortedNames(cfg.Functions) {
		f := cfg.Functions[name]
		d := defs[name]
		switch {
		case d != nil && d.Fingerprint == f.Fingerprint():
		case d != nil && boot:
			warnings = append(warnings, fmt.Sprintf("function %s: the cluster runs version %d (deployed by %s at %s), which differs from this node's file; `stoke deploy -f` deploys the file",
				name, d.Version, d.Node, d.Deployed.Format(time.RFC3339)))
		default:
			changed = append(changed, f)
		}
	}
	if !boot {
		for name, d := range defs {
			if cfg.Functions[name] == nil {
				removed = append(removed, d)
			}
		}
	}
	// Build and store every changed function before anything runs it.
	s.setPaths(cfg, true)
	var published []*cluster.Definition
	discard := func() {
		for _, d := range published {
			s.node.Discard(context.WithoutCancel(ctx), d)
		}
	}
	skip := []string{cfg.DataDir, cfg.Cluster.Artifacts}
	for _, f := range changed {
		iso, err := s.isolation(ctx, cfg, f)
		if err != nil {
			discard()
			return nil, &admin.DeployError{Msg: fmt.Sprintf("function %s: %v", f.Name, err)}
		}
		if err := s.build(ctx, f, iso); err != nil {
			discard()
			return nil, err
		}
		d, err := s.node.Publish(ctx, f, skip, defs[f.Name])
		if err != nil {
			discard()
			return nil, &admin.DeployError{Msg: err.Error() + "\nNothing was deployed; the previous version keeps serving."}
		}
		published = append(published, d)
	}
	next := map[string]*cluster.Definition{}
	for name, d := range defs {
		next[name] = d
	}
	for _, d := range published {
		next[d.Function.Name] = d
	}
	for _, d := range removed {
		delete(next, d.Function.Name)
	}
	res, err := s.runDefinitions(ctx, cfg, yaml, next)
	if err != nil {
		discard()
		return nil, err
	}
	// Other nodes follow from here.
	var errs []string
	for _, d := range published {
		adopted, err := s.node.Commit(ctx, d)
		if err != nil {
			errs = append(errs, err.Error())
		}
		if err != nil || adopted {
			// Adopted: another node stored the same version first; this
			// node keeps running its identical copy.
			s.node.Discard(context.WithoutCancel(ctx), d)
		}
	}
	for _, d := range removed {
		if err := s.node.Remove(ctx, d); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		// This node runs what it deployed until it follows the cluster
		// (at once: the winner's write woke its loop).
		return nil, fmt.Errorf("%s; the cluster runs the other deploy's version", strings.Join(errs, "; "))
	}
	res.Warnings = append(res.Warnings, warnings...)
	return res, nil
}

// runDefinitions makes this node run defs: their files fetched, each
// function relocated to its unpacked copy, under the cluster's versions.
// The caller holds deployMu.
func (s *Server) runDefinitions(ctx context.Context, base *config.Config, yaml []byte, defs map[string]*cluster.Definition) (*admin.DeployResult, error) {
	run := *base
	run.Functions = map[string]*config.Function{}
	ao := applyOpts{prebuilt: true, versions: map[string]int{}, fps: map[string]string{}}
	keep := map[string]bool{}
	for name, d := range defs {
		f, err := s.node.Fetch(ctx, d)
		if err != nil {
			return nil, err
		}
		run.Functions[name] = f
		ao.versions[name] = d.Version
		ao.fps[name] = d.Fingerprint
		keep[f.Cwd] = true
	}
	res, err := s.applyLocked(ctx, &run, yaml, ao)
	if err != nil {
		return nil, err
	}
	s.node.PruneArtifacts(keep)
	return res, nil
}

// followCluster runs the cluster's functions whenever their definitions
// change (a deploy on another node).
func (s *Server) followCluster(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.node.FunctionsChanged():
		}
		if err := s.syncCluster(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("following the cluster's functions", "err", err)
		}
	}
}

// syncCluster runs the stored definitions if they differ from what runs.
func (s *Server) syncCluster(ctx context.Context) error {
	// Read under deployMu: definitions read before a deploy on this node
	// finished would be older than what it runs afterwards.
	s.deployMu.Lock()
	defer s.deployMu.Unlock()
	defs, err := s.node.Definitions(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	same := len(defs) == len(s.fns)
	for name, d := range s.fns {
		if def := defs[name]; def == nil || def.Fingerprint != d.fp {
			same = false
		}
	}
	base := s.cfg
	s.mu.Unlock()
	if same {
		return nil
	}
	res, err := s.runDefinitions(ctx, base, nil, defs)
	if err != nil {
		return err
	}
	for name, v := range res.Deployed {
		s.log.Info("following the cluster", "function", name, "version", v)
	}
	return nil
}

// offer routes d's requests through the cluster and offers its idle
// instances to other nodes.
func (s *Server) offer(d *deployed) {
	if s.node == nil {
		return
	}
	v := strconv.Itoa(d.version)
	d.gw.Pool = s.node.NewRouter(d.cfg.Name, v, d.pool)
	d.unoffer = s.node.Offer(d.cfg.Name, v, d.pool, d.cfg.Runtime == "lambda")
}

func sortedNames(fns map[string]*config.Function) []string {
	out := make([]string, 0, len(fns))
	for n := range fns {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
