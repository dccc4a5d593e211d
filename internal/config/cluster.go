package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Cluster is the cluster: block (docs/cluster.md). A config without one
// has a nil *Cluster, and Stoke is one node on SQLite.
type Cluster struct {
	Name string // the same on every node
	Node string // unique per node
	// Listen is where the embedded NATS server takes routes from its
	// peers; empty with NATSURL.
	Listen string
	// Routes are the peers' route URLs (nats://host:port); listing the
	// node itself is harmless.
	Routes []string
	// Advertise is the host other nodes reach this node at (its peer
	// listener); default the host of Listen.
	Advertise string
	// PeerListen is the node-to-node HTTP listener a request claimed on
	// this node arrives on; default the host of Listen, port Listen+1.
	PeerListen string
	// Secret authenticates routes, the node-to-node HTTP hop and keys
	// JetStream's encryption at rest. At least 32 characters.
	Secret string
	// TLS, when set, encrypts and authenticates routes and the peer hop
	// with certificates every node trusts through CA.
	TLS *ClusterTLS
	// Replicas is JetStream's replica count for Stoke's buckets and
	// streams: default 3 with three or more nodes, else 1.
	Replicas int
	// NATSURL joins an existing JetStream-enabled NATS cluster instead of
	// embedding a server; Credentials is its .creds file, if any.
	NATSURL     string
	Credentials string
	// ClaimTimeout bounds one claim of an idle instance on another node:
	// past it the request cold-starts locally. Default 30 ms.
	ClaimTimeout time.Duration
	// Artifacts is where the node unpacks functions' built files; default
	// beside data_dir (<data_dir>.artifacts), never inside it: data_dir is
	// hidden from functions, their code is not.
	Artifacts string
}

// ClusterTLS are PEM files.
type ClusterTLS struct {
	Cert, Key, CA string
}

// minClusterSecret is the shortest secret accepted: 32 characters, the
// admin token's bound.
const minClusterSecret = 32

var clusterNameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

var clusterKeys = map[string]setter[*Cluster]{
	"name": func(p *parser, k string, v *yaml.Node, c *Cluster) {
		p.checked(v, k, clusterNameRe.MatchString, "is not a cluster name; allowed: 1 to 64 letters, digits, - and _", &c.Name)
	},
	"node": func(p *parser, k string, v *yaml.Node, c *Cluster) {
		p.checked(v, k, clusterNameRe.MatchString, "is not a node name; allowed: 1 to 64 letters, digits, - and _, unique per node", &c.Node)
	},
	"listen":      func(p *parser, k string, v *yaml.Node, c *Cluster) { p.hostPort(v, k, &c.Listen) },
	"peer_listen": func(p *parser, k string, v *yaml.Node, c *Cluster) { p.hostPort(v, k, &c.PeerListen) },
	"routes":      func(p *parser, k string, v *yaml.Node, c *Cluster) { p.routeURLs(v, k, c) },
	"advertise": func(p *parser, k string, v *yaml.Node, c *Cluster) {
		p.checked(v, k, validHost, "is not a host; allowed: a host name or address other nodes reach this one at", &c.Advertise)
	},
	"secret": func(p *parser, k string, v *yaml.Node, c *Cluster) {
		var s string
		if !p.str(v, k, &s) {
			return
		}
		if len(s) < minClusterSecret {
			p.errf(v, k, "%d characters; allowed: at least %d (e.g. ${STOKE_CLUSTER_SECRET} set to `openssl rand -hex 32`)", len(s), minClusterSecret)
			return
		}
		c.Secret = s
	},
	"tls": func(p *parser, k string, v *yaml.Node, c *Cluster) {
		t := &ClusterTLS{}
		present := walk(p, v, k, clusterTLSKeys, t)
		for _, want := range []string{"cert", "key", "ca"} {
			if present[want] == nil {
				p.errf(v, k+"."+want, "missing; allowed: cluster.tls needs cert, key and ca (PEM files)")
			}
		}
		c.TLS = t
	},
	"replicas": func(p *parser, k string, v *yaml.Node, c *Cluster) {
		p.intField(v, k, 1, 5, " (JetStream replicas)", &c.Replicas)
	},
	"nats_url": func(p *parser, k string, v *yaml.Node, c *Cluster) {
		var s string
		if !p.str(v, k, &s) {
			return
		}
		if u, err := url.Parse(s); err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
			p.errf(v, k, "%q is not a NATS URL; allowed: nats://host:4222 or tls://host:4222", s)
			return
		}
		c.NATSURL = s
	},
	"claim_timeout": func(p *parser, k string, v *yaml.Node, c *Cluster) {
		p.duration(v, k, time.Millisecond, 5*time.Second, "1ms to 5s", &c.ClaimTimeout)
	},
	"credentials": func(p *parser, k string, v *yaml.Node, c *Cluster) { p.path(v, k, &c.Credentials) },
	"artifacts":   func(p *parser, k string, v *yaml.Node, c *Cluster) { p.path(v, k, &c.Artifacts) },
}

var clusterTLSKeys = map[string]setter[*ClusterTLS]{
	"cert": func(p *parser, k string, v *yaml.Node, t *ClusterTLS) { p.path(v, k, &t.Cert) },
	"key":  func(p *parser, k string, v *yaml.Node, t *ClusterTLS) { p.path(v, k, &t.Key) },
	"ca":   func(p *parser, k string, v *yaml.Node, t *ClusterTLS) { p.path(v, k, &t.CA) },
}

// cluster reads the cluster block and fills in what follows from it.
func (p *parser) cluster(n *yaml.Node, key string, c *Config) {
	cl := &Cluster{}
	present := walk(p, n, key, clusterKeys, cl)
	c.Cluster = cl
	need := func(name, why string) {
		if present[name] == nil {
			p.errf(n, key+"."+name, "missing; allowed: %s", why)
		}
	}
	need("name", "the cluster's name, the same on every node")
	need("node", "this node's name, unique in the cluster")
	need("secret", "a shared secret of at least 32 characters, the same on every node")
	if cl.NATSURL != "" {
		for _, k := range []string{"listen", "routes"} {
			if present[k] != nil {
				p.errf(present[k], key+"."+k, "set with nats_url; allowed: either nats_url (an existing NATS cluster) or listen and routes (an embedded one)")
			}
		}
	} else {
		need("listen", "host:port for NATS routes, e.g. 10.0.0.1:6222")
		if present["credentials"] != nil {
			p.errf(present["credentials"], key+".credentials", "only with nats_url; allowed: remove it, an embedded server authenticates routes with cluster.secret")
		}
	}
	host, port := "", 0
	if cl.Listen != "" {
		h, ps, _ := net.SplitHostPort(cl.Listen)
		host = h
		port, _ = strconv.Atoi(ps)
	}
	if cl.Advertise == "" {
		if host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
			at := present["listen"]
			if at == nil {
				at = n
			}
			p.errf(at, key+".advertise", "missing; allowed: the address other nodes reach this node at (needed when listen's host is empty, 0.0.0.0 or ::, or with nats_url)")
		}
		cl.Advertise = host
	}
	if cl.PeerListen == "" {
		pp := 0
		if port > 0 {
			pp = port + 1
		}
		h := host
		if h == "" {
			h = cl.Advertise
		}
		cl.PeerListen = net.JoinHostPort(h, strconv.Itoa(pp))
	}
	if cl.PeerListen == cl.Listen && port != 0 {
		p.errf(present["peer_listen"], key+".peer_listen", "%s is also cluster.listen; allowed: a different host:port", cl.PeerListen)
	}
	if cl.ClaimTimeout == 0 {
		cl.ClaimTimeout = DefaultClaimTimeout
	}
	if cl.Replicas == 0 {
		cl.Replicas = DefaultReplicas(cl)
	}
}

// DefaultClaimTimeout bounds a claim unless cluster.claim_timeout says
// otherwise: tens of milliseconds, so a slow or partitioned NATS costs a
// request little before it cold-starts locally.
const DefaultClaimTimeout = 30 * time.Millisecond

// DefaultReplicas is 3 when the node and its routes name three nodes or
// more, else 1: JetStream needs a majority of the replicas up to write, so
// two replicas would stop at the first lost node.
func DefaultReplicas(c *Cluster) int {
	if c.NATSURL != "" {
		return 3
	}
	peers := map[string]bool{c.Listen: true}
	for _, r := range c.Routes {
		if u, err := url.Parse(r); err == nil {
			peers[u.Host] = true
		}
	}
	if len(peers) >= 3 {
		return 3
	}
	return 1
}

// routeURLs reads cluster.routes: nats://host:port URLs.
func (p *parser) routeURLs(n *yaml.Node, key string, c *Cluster) {
	const allow = "allowed: a list of route URLs like nats://10.0.0.2:6222"
	r := resolve(n)
	if r.Kind != yaml.SequenceNode {
		p.errf(n, key, "expected a list, got %s; %s", describe(r), allow)
		return
	}
	for i, e := range r.Content {
		k := fmt.Sprintf("%s[%d]", key, i)
		var s string
		if !p.str(e, k, &s) {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "nats" && u.Scheme != "nats-route") || u.Port() == "" || u.Hostname() == "" || u.User != nil {
			p.errf(e, k, "%q is not a route URL; %s (no user or password: cluster.secret authenticates routes)", s, allow)
			continue
		}
		c.Routes = append(c.Routes, s)
	}
}

// artifactsDir is cluster.artifacts' default: beside data_dir.
func artifactsDir(dataDir string) string {
	return filepath.Join(filepath.Dir(dataDir), filepath.Base(dataDir)+".artifacts")
}
