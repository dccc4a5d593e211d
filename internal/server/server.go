// Package server wires Stoke's parts together: it opens the store, starts the
// gateway and admin listeners, deploys functions (build, version, pool) and
// shuts everything down in order.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/cluster"
	"github.com/stokehq/stoke/internal/config"
	"github.com/stokehq/stoke/internal/cost"
	"github.com/stokehq/stoke/internal/frontconn"
	"github.com/stokehq/stoke/internal/gateway"
	"github.com/stokehq/stoke/internal/invokeapi"
	"github.com/stokehq/stoke/internal/logs"
	"github.com/stokehq/stoke/internal/metrics"
	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/record"
	"github.com/stokehq/stoke/internal/runtime"
	lambdart "github.com/stokehq/stoke/internal/runtime/lambda"
	"github.com/stokehq/stoke/internal/sandbox"
	"github.com/stokehq/stoke/internal/store"
	"github.com/stokehq/stoke/internal/trace"
)

// Options configures a Server beyond its config file.
type Options struct {
	Logger *slog.Logger
	// Out receives the one-time admin token notice and, with EchoLogs, the
	// functions' log lines. Default os.Stderr.
	Out      io.Writer
	EchoLogs bool
	// DrainTimeout bounds how long shutdown and deploys wait for requests in
	// flight. Default: the longest function timeout plus 5 s.
	DrainTimeout time.Duration
}

// Server is a running Stoke.
type Server struct {
	o   Options
	log *slog.Logger

	cfg   *config.Config // the config of the last successful deploy
	st    *store.Store
	hub   *logs.Hub
	sb    *sandbox.Manager
	gw    *gateway.Gateway
	trace *trace.Tracer
	token string
	echo  *echoWriter // nil unless Options.EchoLogs
	// invoke is Lambda's Invoke API, with its queue of Event invocations.
	invoke *invokeapi.API
	// spares are lambda instances' Runtime API listeners made ahead.
	spares *lambdart.Spares
	// node is this server's membership of a cluster; nil for one node
	// (cluster.go).
	node   *cluster.Node
	clus   clusterState
	events *cluster.EventQueue // the cluster's Event queue; nil for one node

	// prices are billing: at start; like billing.granularity (which the
	// gateway rounds with) they change on the next `stoke serve`.
	prices  cost.Prices
	metrics *metrics.Metrics

	gwLn, adminLn net.Listener
	gwTCP         *net.TCPListener  // under gwLn (quiesce)
	gwSrv         *frontconn.Server // its Fallback serves what the loop hands over
	gwArrivals    arrivals
	adminSrv      *http.Server

	deployMu sync.Mutex // one deploy at a time
	mu       sync.Mutex
	fns      map[string]*deployed
	// paths are each function's directories, hidden from the others (isolation.go).
	pathsMu sync.Mutex
	paths   map[string][]string
	drains  sync.WaitGroup // old pools draining after a deploy
	tunes   tuneState      // stoke tune's temporary pools and latest reports (tune.go)
	caches  caches         // the functions' response caches (cache.go)
	// budget is memory_budget across every pool (nil: none); like billing,
	// it is read at start.
	budget *pool.Budget
}

type deployed struct {
	cfg        *config.Function
	fp         string             // the fingerprint versions are counted by (applyOpts.fp)
	iso        *sandbox.Isolation // nil: not isolated
	version    int
	pool       *pool.Pool
	rt         runtime.Runtime
	gw         *gateway.Function
	deployedAt time.Time
	// since is when the function was first deployed on this server, under
	// this version or an earlier one (deployedAt when it is the first):
	// its keep_warm has cost money since then (stoke cost).
	since time.Time
	// unoffer stops offering the pool's idle instances to other nodes;
	// nil for one node (cluster.go).
	unoffer func()
	limit   *cluster.Limit // max_instances cluster-wide; nil for one node
}

func (d *deployed) stopOffer() {
	if d.unoffer != nil {
		d.unoffer()
	}
}

// close stops the pool and what the cluster holds for it.
func (d *deployed) close() {
	d.stopOffer()
	d.pool.Close()
	if d.limit != nil {
		d.limit.Close()
	}
}

// Start opens the store under cfg.DataDir, listens, and deploys cfg. Nothing
// is left running when it returns an error.
func Start(ctx context.Context, cfg *config.Config, yaml []byte, o Options) (s *Server, err error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Out == nil {
		o.Out = os.Stderr
	}
	s = &Server{o: o, log: o.Logger, fns: map[string]*deployed{}, prices: prices(cfg.Billing),
		budget: pool.NewBudget(cfg.MemoryBudgetMB)}
	srv := s // s is nil by the time an error return runs this
	defer func() {
		if err != nil {
			srv.Close(context.Background())
		}
	}()
	if s.st, err = store.Open(ctx, cfg.DataDir); err != nil {
		return nil, err
	}
	s.hub = logs.New(s.st)
	s.metrics = metrics.New(metrics.Options{Prices: s.prices, Instances: s.instanceCounts, Dropped: s.st.Dropped, Caches: s.cacheStats,
		StoreLost: s.st.Lost, StoreWritable: func() bool { return s.st.Health().Writable }})
	if o.EchoLogs {
		s.echo = newEchoWriter(o.Out)
		s.hub.Echo = s.echo
	}
	if s.sb, err = newSandbox(cfg, s.log, o.Out); err != nil {
		return nil, fmt.Errorf("starting the sandbox: %w", err)
	}
	// Lambda's Runtime API listeners made ahead, bounded as the sandbox's
	// prepared stubs are.
	s.spares = lambdart.NewSpares(sandbox.DefaultPrepared, s.log)
	if s.token, err = adminToken(cfg, o.Out); err != nil {
		return nil, err
	}
	if s.trace, err = trace.NewTracer(ctx, trace.Options{Store: s.st, Logger: s.log}); err != nil {
		return nil, err
	}
	s.gw = gateway.New(gateway.Options{
		Timeout:      cfg.Gateway.Timeout,
		MaxBodyBytes: cfg.Gateway.MaxBodyBytes,
		Granularity:  cfg.Billing.Granularity,
		Recorder:     s,
		Tracer:       s.trace,
		Logger:       s.log,
		// Read at start, like the other gateway keys.
		TrustedProxies: cfg.Gateway.TrustedProxies,
	})
	if s.gwLn, s.gwTCP, err = listen(cfg.Listen, cfg.TLS, "gateway (listen)"); err != nil {
		return nil, err
	}
	if s.adminLn, _, err = listen(cfg.Admin.Listen, cfg.Admin.TLS, "admin (admin.listen)"); err != nil {
		return nil, err
	}
	if cfg.Cluster != nil {
		if err = s.joinCluster(ctx, cfg, yaml); err != nil {
			return nil, err
		}
	} else if _, err = s.apply(ctx, cfg, yaml, applyOpts{}); err != nil {
		return nil, err
	}
	var queue invokeapi.Queue = s.st
	if s.node != nil {
		// A cluster's Event queue is JetStream's: any node's workers take
		// an event, and one whose node died is delivered again.
		q, err := s.node.EventQueue(ctx)
		if err != nil {
			return nil, err
		}
		// The node that ran an event to its end keeps its outcome.
		q.Keep = func(ctx context.Context, it store.AsyncItem) error {
			_, err := s.st.KeepAsync(ctx, it)
			return err
		}
		s.events, queue = q, q
	}
	s.invoke = invokeapi.New(invokeBackend{s}, invokeapi.Options{
		Region: cfg.Region, AccountID: cfg.AccountID, Auth: cfg.InvokeAPI.Auth, Credentials: cfg.InvokeAPI.Credentials,
		Store: queue, Logger: s.log,
	})
	// Finished Event invocations are kept a week (Lambda keeps an event up
	// to 6 hours; the outcome is worth longer); pruned at each start.
	if _, err := s.st.PruneAsync(ctx, time.Now().Add(-7*24*time.Hour)); err != nil {
		s.log.Warn("pruning finished Event invocations", "err", err)
	}
	s.invoke.Start(context.WithoutCancel(ctx))
	s.gwSrv = newGatewayServer(s.nodeHeader(frontDoor(s.invoke.Handler(), s.gw)), s.gw, &s.gwArrivals, s.log)
	s.adminSrv = newHTTPServer(admin.Handler(s, s.token))
	go s.gwSrv.Serve(s.gwLn)
	go s.adminSrv.Serve(s.adminLn)
	s.log.Info("stoke is serving", "gateway", scheme(cfg.TLS)+s.gwLn.Addr().String(), "admin", scheme(cfg.Admin.TLS)+s.adminLn.Addr().String(), "functions", len(cfg.Functions), "data_dir", cfg.DataDir)
	return s, nil
}

// GatewayAddr and AdminAddr are the bound addresses (useful with port 0).
func (s *Server) GatewayAddr() string { return s.gwLn.Addr().String() }
func (s *Server) AdminAddr() string   { return s.adminLn.Addr().String() }

// Token is the admin API's bearer token.
func (s *Server) Token() string { return s.token }

// Close stops taking requests, lets those in flight finish (bounded by ctx
// and DrainTimeout), stops every instance, removes the cgroups and closes
// the store.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	drain := s.drainTimeout()
	dctx, cancel := context.WithTimeout(ctx, drain)
	defer cancel()
	if s.gwSrv != nil {
		if err := shutdownHTTP(dctx, s.gwSrv, s.gwTCP, &s.gwArrivals, s.log); err != nil {
			errs = append(errs, fmt.Errorf("draining the gateway: %w", err))
		}
	} else if s.gwLn != nil {
		s.gwLn.Close()
	}
	if s.adminSrv != nil {
		sctx, c := context.WithTimeout(ctx, time.Second)
		_ = s.adminSrv.Shutdown(sctx) // log followers never end by themselves
		c()
		s.adminSrv.Close()
	} else if s.adminLn != nil {
		s.adminLn.Close()
	}
	if s.invoke != nil {
		// Event invocations cut off here stay queued for the next start.
		if err := s.invoke.Close(dctx); err != nil {
			errs = append(errs, err)
		}
	}
	// Before the pools: peers stop claiming this node's instances.
	s.leaveCluster()
	s.closeCaches() // their background refreshes, before the pools they use
	s.mu.Lock()
	fns := s.fns
	s.fns = map[string]*deployed{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, d := range fns {
		wg.Add(1)
		go func() { defer wg.Done(); d.close() }()
	}
	wg.Wait()
	s.tunes.closeAll() // a tune cut off by the admin listener's close
	s.drains.Wait()
	s.spares.Close() // the pools closed their Runtimes: none is left but in case
	if s.sb != nil {
		if err := s.sb.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.trace != nil {
		// Exports what is queued; before the store, which its Flush uses.
		if err := s.trace.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.st != nil {
		if err := s.st.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.echo != nil {
		s.echo.Close()
	}
	return errors.Join(errs...)
}

func (s *Server) drainTimeout() time.Duration {
	if s.o.DrainTimeout > 0 {
		return s.o.DrainTimeout
	}
	longest := 3 * time.Second
	s.mu.Lock()
	for _, d := range s.fns {
		longest = max(longest, d.cfg.Timeout)
	}
	s.mu.Unlock()
	return longest + 5*time.Second
}

// adminToken returns admin.token, or the token saved in data_dir, or makes
// one, saves it and prints it once.
func adminToken(cfg *config.Config, out io.Writer) (string, error) {
	if cfg.Admin.Token != "" {
		return cfg.Admin.Token, nil
	}
	path := filepath.Join(cfg.DataDir, "admin-token")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("saving the admin token: %w", err)
	}
	fmt.Fprintf(out, "\nAdmin API token (saved in %s; the CLI reads it from there):\n\n    %s\n\n", path, tok)
	return tok, nil
}

// Begin and End make the server the gateway's Recorder: the invocation's
// START, END and REPORT lines go to the function's log, the record to the store.
func (s *Server) Begin(r *record.Record) {
	s.hub.Write(r.Function, r.InstanceID, "platform", record.StartLine(r))
}

func (s *Server) End(r *record.Record) {
	s.metrics.Observe(r)
	if r.InstanceID == "" {
		// Never reached an instance (throttled, init failed, timed out in
		// the queue): Lambda logs no START/REPORT for these; keep the record.
		s.st.Add(r)
		return
	}
	for _, l := range record.ErrorLines(r, time.Now()) {
		s.hub.Write(r.Function, r.InstanceID, "platform", l)
	}
	s.hub.Write(r.Function, r.InstanceID, "platform", record.EndLine(r))
	s.hub.Write(r.Function, r.InstanceID, "platform", record.ReportLine(r))
	s.st.Add(r)
}

// flush waits until the records and log lines queued so far are written,
// so a read sees them. A write that failed does not fail the read: what
// was written is still there, and the loss is counted (store.Health).
func (s *Server) flush(ctx context.Context) error {
	err := s.st.Flush(ctx)
	if err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrClosed) {
		return nil
	}
	return err
}

// Status is what is wrong with Stoke itself (the admin API's /v1/status).
func (s *Server) Status() admin.Status { return admin.Status{Store: s.st.Health()} }
