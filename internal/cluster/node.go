// Package cluster joins Stoke nodes over NATS with JetStream: it embeds
// a NATS server (or connects to an existing cluster), keeps the shared
// state — which nodes are alive, function definitions and their built
// files, cluster-wide instance counts, the Event queue — and lets a
// gateway claim an idle instance on another node.
package cluster

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stokehq/stoke/internal/config"
)

// Options configures a Node.
type Options struct {
	Config  *config.Cluster
	DataDir string // JetStream's files go to DataDir/nats
	Logger  *slog.Logger
	// Heartbeat is how often the node says it is alive; a node silent for
	// three heartbeats is lost. Default 1s.
	Heartbeat time.Duration
}

// Node is this Stoke's membership of the cluster. Create it with Start.
type Node struct {
	o    Options
	cfg  *config.Cluster
	log  *slog.Logger
	srv  *natsserver.Server // nil with nats_url
	nc   *nats.Conn
	js   jetstream.JetStream
	name string

	members *members
	kvNodes jetstream.KeyValue // heartbeats
	kvFns   jetstream.KeyValue // function definitions
	kvCount jetstream.KeyValue // instance counts per function version
	objects jetstream.ObjectStore

	fnChanged chan struct{}
	// fnRev is the newest revision of the functions bucket this node has
	// seen (its watcher, its own writes, its reads): no read of the
	// definitions may return an older view.
	fnRev     atomic.Uint64
	claims    reservations // this node's instances claimed by others (claim.go)
	offeredMu sync.Mutex
	offers    map[string]*offer // by claim subject (claim.go)
	peerOnce  sync.Once
	peerHTTP  *http.Client

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Bucket and subject names. Every name starts with the cluster's so two
// clusters can share an external NATS.
const (
	bucketNodes     = "nodes"
	bucketFunctions = "functions"
	bucketCounts    = "counts"
	bucketArtifacts = "artifacts"
)

// routeUser is the user name routes authenticate as; the password is
// derived from the cluster secret.
const routeUser = "stoke-route"

// derive turns the cluster secret into a credential for one purpose, so
// no credential on the wire or on disk is the secret itself.
func derive(secret, purpose string) string {
	h := sha256.Sum256([]byte("stoke/" + purpose + "\x00" + secret))
	return hex.EncodeToString(h[:])
}

// Start joins the cluster: it starts the embedded NATS server (or
// connects to nats_url), waits for JetStream to accept writes, makes
// Stoke's buckets and starts announcing this node. It returns once the
// node can take part, or ctx's error.
func Start(ctx context.Context, o Options) (_ *Node, err error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = time.Second
	}
	c := o.Config
	n := &Node{o: o, cfg: c, log: o.Logger.With("node", c.Node), name: c.Node, fnChanged: make(chan struct{}, 1)}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if c.NATSURL == "" {
		if n.srv, err = embed(o); err != nil {
			return nil, err
		}
		n.nc, err = nats.Connect("", nats.InProcessServer(n.srv), nats.UserInfo("stoke", derive(c.Secret, "client")),
			nats.Name("stoke "+c.Node), nats.MaxReconnects(-1))
	} else {
		opts := []nats.Option{nats.Name("stoke " + c.Node), nats.MaxReconnects(-1), nats.Timeout(5 * time.Second)}
		if c.Credentials != "" {
			opts = append(opts, nats.UserCredentials(c.Credentials))
		}
		if c.TLS != nil {
			t, terr := tlsConfig(c.TLS, false)
			if terr != nil {
				return nil, terr
			}
			opts = append(opts, nats.Secure(t))
		}
		n.nc, err = nats.Connect(c.NATSURL, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: connecting to NATS: %w", err)
	}
	if n.js, err = jetstream.New(n.nc); err != nil {
		return nil, fmt.Errorf("cluster: JetStream: %w", err)
	}
	if err := n.buckets(ctx); err != nil {
		return nil, err
	}
	n.members = newMembers(n)
	if err := n.members.start(ctx); err != nil {
		return nil, err
	}
	if err := n.watchFunctions(); err != nil {
		return nil, err
	}
	return n, nil
}

// embed starts the NATS server: routes authenticated with a credential
// derived from the secret (and TLS when configured), a loopback client
// port behind a password (Stoke connects in process), JetStream encrypted at rest with a key derived
// from the secret.
func embed(o Options) (*natsserver.Server, error) {
	c := o.Config
	host, ps, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return nil, fmt.Errorf("cluster.listen %q: %w", c.Listen, err)
	}
	port, _ := strconv.Atoi(ps)
	if port == 0 {
		port = -1 // NATS' "any free port"
	}
	pass := derive(c.Secret, "route")
	var routes []*url.URL
	for _, r := range c.Routes {
		u, err := url.Parse(r)
		if err != nil {
			return nil, fmt.Errorf("cluster.routes: %q: %w", r, err)
		}
		if u.Host == c.Listen {
			continue // NATS would count itself as a peer to wait for
		}
		u.User = url.UserPassword(routeUser, pass)
		routes = append(routes, u)
	}
	store := filepath.Join(o.DataDir, "nats")
	if err := os.MkdirAll(store, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: JetStream store: %w", err)
	}
	opts := &natsserver.Options{
		ServerName: c.Node,
		// The client port is loopback only and needs a password; Stoke
		// itself connects in process. (DontListen would also stop routing:
		// the server starts routes once its client listener is up.)
		Host: "127.0.0.1", Port: -1, Username: "stoke", Password: derive(c.Secret, "client"),
		NoSigs:    true,
		JetStream: true,
		StoreDir:  store,
		// AES-GCM keyed from the secret: function definitions carry env.
		JetStreamKey:    derive(c.Secret, "store"),
		JetStreamCipher: natsserver.AES,
		Cluster: natsserver.ClusterOpts{
			Name: c.Name, Host: host, Port: port, Username: routeUser, Password: pass,
			Advertise: net.JoinHostPort(c.Advertise, strconv.Itoa(max(port, 0))),
			// A lost peer is retried for as long as the node runs.
			ConnectRetries: -1, ConnectBackoff: true,
			// A route that stops answering (a partition sends no reset) is
			// closed within about six seconds, not NATS' default minutes.
			PingInterval: 2 * time.Second, MaxPingsOut: 3,
		},
		Routes: routes,
		// Close waits for the leaderships to move, then stops: nothing
		// else is connected by then.
		LameDuckDuration: 5 * time.Second, LameDuckGracePeriod: time.Second,
	}
	if port < 0 {
		opts.Cluster.Advertise = ""
	}
	if len(routes) == 0 {
		// A cluster of one: JetStream's clustered mode needs routes, so
		// the server runs alone until a restart gives it peers.
		opts.Cluster = natsserver.ClusterOpts{}
	}
	if c.TLS != nil {
		t, err := tlsConfig(c.TLS, true)
		if err != nil {
			return nil, err
		}
		opts.Cluster.TLSConfig = t
		opts.Cluster.TLSTimeout = 2
	}
	s, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: NATS server: %w", err)
	}
	s.SetLoggerV2(&natsLog{log: o.Logger.With("component", "nats"), secret: pass}, false, false, false)
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("cluster: NATS server did not start on %s (cluster.listen)", c.Listen)
	}
	return s, nil
}

// tlsConfig loads cluster.tls: this node's certificate, and the CA every
// peer's certificate must chain to (both ways when server is true).
func tlsConfig(t *config.ClusterTLS, server bool) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("cluster.tls: %w", err)
	}
	pem, err := os.ReadFile(t.CA)
	if err != nil {
		return nil, fmt.Errorf("cluster.tls.ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("cluster.tls.ca: %s holds no PEM certificate", t.CA)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	if server {
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// buckets makes (or finds) Stoke's KV buckets and object store, retrying
// while JetStream has no quorum yet (peers still starting).
func (n *Node) buckets(ctx context.Context) error {
	r := n.cfg.Replicas
	pre := n.cfg.Name + "-"
	var err error
	for {
		err = n.tryBuckets(ctx, pre, r)
		if err == nil {
			return nil
		}
		n.log.Debug("cluster: JetStream not ready yet", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: JetStream did not become ready (a majority of %d replicas must be up): %w", r, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (n *Node) tryBuckets(ctx context.Context, pre string, r int) error {
	// Requests sent before the meta leader is known can go unanswered:
	// ask briefly and often rather than wait long on one.
	actx, acancel := context.WithTimeout(ctx, time.Second)
	_, err := n.js.AccountInfo(actx)
	acancel()
	if err != nil {
		return err
	}
	// A new replicated stream waits for its first leader election (4 to 9
	// s in NATS): make the buckets side by side, not one after another.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kv := func(dst *jetstream.KeyValue, cfg jetstream.KeyValueConfig) func() error {
		return func() error {
			if *dst != nil {
				return nil
			}
			cfg.Bucket, cfg.Replicas = pre+cfg.Bucket, r
			b, err := n.js.CreateOrUpdateKeyValue(ctx, cfg)
			if err == nil {
				*dst = b
			}
			return err
		}
	}
	steps := []func() error{
		// Values older than a minute are gone: a lost node's key does not
		// stay forever.
		kv(&n.kvNodes, jetstream.KeyValueConfig{Bucket: bucketNodes, Description: "Stoke nodes' heartbeats", History: 1, TTL: time.Minute}),
		kv(&n.kvFns, jetstream.KeyValueConfig{Bucket: bucketFunctions, Description: "Stoke function definitions", History: 5}),
		kv(&n.kvCount, jetstream.KeyValueConfig{Bucket: bucketCounts, Description: "Stoke instances per node, per function version", History: 1}),
		func() error {
			if n.objects != nil {
				return nil
			}
			o, err := n.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
				Bucket: pre + bucketArtifacts, Description: "Stoke functions' built files", Replicas: r,
			})
			if err == nil {
				n.objects = o
			}
			return err
		},
	}
	errs := make([]error, len(steps))
	var wg sync.WaitGroup
	for i, step := range steps {
		wg.Go(func() { errs[i] = step() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Name is this node's name (cluster.node).
func (n *Node) Name() string { return n.name }

// Conn is the node's NATS connection.
func (n *Node) Conn() *nats.Conn { return n.nc }

// SetPeer sets the address of this node's peer listener, announced from
// the next heartbeat on.
func (n *Node) SetPeer(addr string) { n.members.setPeer(addr) }

// Alive lists the nodes heard from within the last three heartbeats,
// this one included, sorted by name.
func (n *Node) Alive() []string { return n.members.alive() }

// WatchMembers returns a channel signalled whenever a node joins or is
// lost, and a function that stops it.
func (n *Node) WatchMembers() (<-chan struct{}, func()) { return n.members.subscribe() }

// Close leaves the cluster: it stops announcing the node, closes the
// connection and shuts the embedded server down.
func (n *Node) Close() {
	n.cancel()
	n.claims.releaseAll()
	if n.members != nil {
		n.members.stop()
	}
	n.wg.Wait()
	// The hop's kept-alive connections to other nodes end with the node.
	n.peerClient().CloseIdleConnections()
	if n.nc != nil {
		_ = n.nc.Drain()
		n.nc.Close()
	}
	if n.srv != nil {
		// Lame duck hands this server's JetStream leaderships to the
		// others first: leaving does not stall the buckets and streams
		// for an election (4–9 s each).
		n.srv.LameDuckShutdown()
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
}

// ErrNoQuorum wraps failures to reach JetStream: in a partition, the side
// without a majority gets it.
var ErrNoQuorum = errors.New("cluster: JetStream unavailable (no quorum?)")

// natsLog passes the embedded server's warnings and errors to slog, with
// the route credential replaced should a message ever carry it.
type natsLog struct {
	log    *slog.Logger
	secret string
}

func (l *natsLog) msg(format string, v []any) string {
	s := fmt.Sprintf(format, v...)
	if l.secret != "" {
		s = redact(s, l.secret)
	}
	return s
}

func (l *natsLog) Noticef(format string, v ...any) { l.log.Debug(l.msg(format, v)) }
func (l *natsLog) Warnf(format string, v ...any)   { l.log.Warn(l.msg(format, v)) }
func (l *natsLog) Fatalf(format string, v ...any)  { l.log.Error(l.msg(format, v)) }
func (l *natsLog) Errorf(format string, v ...any)  { l.log.Warn(l.msg(format, v)) }
func (l *natsLog) Debugf(format string, v ...any)  {}
func (l *natsLog) Tracef(format string, v ...any)  {}
