package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/config"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string // the CA certificate's file
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stoke test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, pem: filepath.Join(t.TempDir(), "ca.pem")}
	writePEM(t, ca.pem, "CERTIFICATE", der)
	return ca
}

// issue makes a node certificate for the loopback addresses the tests'
// nodes use (both server and client use: routes and the hop are mutual
// TLS), and returns its cluster.tls block.
func (ca *testCA) issue(t *testing.T, name string) *config.ClusterTLS {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.2"), net.ParseIP("127.0.0.3"), net.ParseIP("127.0.0.4")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := &config.ClusterTLS{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem"), CA: ca.pem}
	writePEM(t, c.Cert, "CERTIFICATE", der)
	writePEM(t, c.Key, "EC PRIVATE KEY", kder)
	return c
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRoutesOverTLS: with cluster.tls two nodes join over TLS routes; a
// node with the right secret but a certificate from another CA, or none,
// is refused.
func TestRoutesOverTLS(t *testing.T) {
	ca := newTestCA(t)
	nodes := testClusterWith(t, 2, func(c *config.Cluster) { c.TLS = ca.issue(t, c.Node) })
	for _, nd := range nodes {
		waitFor(t, 60*time.Second, nd.Name()+" to see both nodes over TLS routes", func() bool {
			return slices.Equal(nd.Alive(), []string{"n1", "n2"})
		})
	}
	// That the routes are TLS shows below: a node without TLS is refused.

	for _, tc := range []struct {
		name string
		tls  *config.ClusterTLS
	}{
		{"another CA", newTestCA(t).issue(t, "intruder")},
		{"no TLS", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := "127.0.0.4"
			c := &config.Cluster{Name: "test", Node: "intruder", Listen: fmt.Sprintf("%s:%d", host, freePort(t, host)), Advertise: host,
				Secret: testSecret, Routes: []string{"nats://" + nodes[0].cfg.Listen}, Replicas: 1, TLS: tc.tls}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			in, err := Start(ctx, Options{Config: c, DataDir: t.TempDir(), Heartbeat: 100 * time.Millisecond})
			if err == nil {
				in.Close()
				t.Fatal("a node without a certificate from the cluster's CA started: its route was accepted")
			}
			if alive := nodes[0].Alive(); !slices.Equal(alive, []string{"n1", "n2"}) {
				t.Fatalf("n1 sees %v after an intruder tried to join", alive)
			}
		})
	}
}

// TestPeerHopOverTLS: with cluster.tls the node-to-node hop is HTTPS with
// client certificates, as the server wires it (PeerTLS on the listener,
// peerClient on the other side): another node's client gets through to
// the handler (which refuses the unknown reservation), a client without
// the cluster's certificate or without TLS does not.
func TestPeerHopOverTLS(t *testing.T) {
	ca := newTestCA(t)
	nodes := testClusterWith(t, 2, func(c *config.Cluster) { c.TLS = ca.issue(t, c.Node) })
	tc, err := nodes[0].PeerTLS()
	if err != nil || tc == nil {
		t.Fatalf("PeerTLS: %v %v", tc, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	// Its log would show the refused handshakes below as errors.
	srv := &http.Server{Handler: nodes[0].PeerHandler(), ReadHeaderTimeout: 5 * time.Second, TLSConfig: tc,
		ErrorLog: log.New(io.Discard, "", 0)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(tls.NewListener(ln, tc)) }()
	defer func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	peer := ln.Addr().String()

	// n2's own hop client: TLS with its certificate, the peer credential.
	req, _ := http.NewRequest(http.MethodPost, nodes[1].peerURL(peer, "release", "no-such-token"), nil)
	req.Header.Set(hdrAuth, derive(nodes[1].cfg.Secret, "peer"))
	resp, err := nodes[1].peerClient().Do(req)
	if err != nil {
		t.Fatalf("n2 to n1's hop over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone || resp.TLS == nil {
		t.Fatalf("n2 to n1's hop: %d (TLS %v), want 410 for an unknown reservation over TLS", resp.StatusCode, resp.TLS != nil)
	}

	// Trusting the CA but showing no certificate: the handshake fails.
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer noCert.CloseIdleConnections()
	req, _ = http.NewRequest(http.MethodPost, "https://"+peer+peerPrefix+"release/no-such-token", nil)
	req.Header.Set(hdrAuth, derive(testSecret, "peer"))
	if resp, err := noCert.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a client without a certificate reached the hop: %d", resp.StatusCode)
	}
	// Plain HTTP to the TLS listener is not served either.
	plain := &http.Client{Transport: &http.Transport{}}
	defer plain.CloseIdleConnections()
	req, _ = http.NewRequest(http.MethodPost, "http://"+peer+peerPrefix+"release/no-such-token", nil)
	req.Header.Set(hdrAuth, derive(testSecret, "peer"))
	if resp, err := plain.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the TLS hop: %d, want 400 (Go's answer to HTTP on a TLS port)", resp.StatusCode)
		}
	}
}
