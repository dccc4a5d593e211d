package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// init: with STOKE_ECHO_HEADERS the test binary is a function that answers
// with the request headers it got, and tries to loosen the admin route's
// Content-Security-Policy.
func init() {
	if os.Getenv("STOKE_ECHO_HEADERS") != "1" {
		return
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src *")
		w.Header().Set("Content-Type", "text/html")
		_ = json.NewEncoder(w).Encode(r.Header)
	})
	_ = http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil)
	os.Exit(0)
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stoke test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

// Both listeners serve TLS from certificate files; they refuse headers
// beyond their limit with 431; the admin invoke route strips the admin's
// credentials and sandboxes what the function answers; wrong admin tokens
// from one address are limited.
func TestDoors(t *testing.T) {
	sandboxtest.CheckNoLeaks(t)
	dir := t.TempDir()
	cert, key, pool := selfSigned(t, dir)
	token := strings.Repeat("k", 40)
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
tls: {cert: %[1]s, key: %[2]s}
admin: {listen: "127.0.0.1:0", token: %[3]s, tls: {cert: %[1]s, key: %[2]s}}
functions:
  echo:
    runtime: http
    command: [%[4]q]
    routes: [/echo]
    env: {STOKE_ECHO_HEADERS: "1"}
`, cert, key, token, sandboxtest.InDir(t, dir))
	s := serve(t, dir, yaml)
	client := func(local string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	c := client("127.0.0.1")
	do := func(c *http.Client, method, url string, h http.Header) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	// TLS on both; plain HTTP gets nowhere.
	gw, adm := "https://"+s.GatewayAddr(), "https://"+s.AdminAddr()
	if resp, body := do(c, "GET", gw+"/echo", nil); resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("gateway over TLS: %d %s", resp.StatusCode, body)
	}
	bearer := http.Header{"Authorization": {"Bearer " + token}}
	if resp, body := do(c, "GET", adm+"/v1/functions", bearer); resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("admin over TLS: %d %s", resp.StatusCode, body)
	}
	for _, a := range []string{s.GatewayAddr(), s.AdminAddr()} {
		if resp, err := http.Get("http://" + a + "/"); err == nil && resp.StatusCode < 400 {
			t.Errorf("plain HTTP to %s: %d", a, resp.StatusCode)
		}
	}

	// Headers beyond the limit: 431, on both listeners.
	big := http.Header{"X-Big": {strings.Repeat("b", 100<<10)}}
	for _, u := range []string{gw + "/echo", adm + "/v1/functions"} {
		if resp, _ := do(c, "GET", u, big); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("GET %s with 100 KB of headers: %d, want 431", u, resp.StatusCode)
		}
	}

	// The admin invoke route: the function sees neither the bearer token
	// nor the dashboard's cookie, and its answer is sandboxed.
	h := http.Header{"Authorization": {"Bearer " + token}, "Cookie": {"stoke_session=abc; other=1"}, "X-Mine": {"kept"}}
	resp, body := do(c, "GET", adm+"/v1/functions/echo/invoke/echo", h)
	if resp.StatusCode != 200 || strings.Contains(body, token) || strings.Contains(body, "Cookie") || strings.Contains(body, "stoke_session") || !strings.Contains(body, "kept") {
		t.Errorf("admin invoke: %d, the function saw %s", resp.StatusCode, body)
	}
	if csp := resp.Header.Values("Content-Security-Policy"); len(csp) != 1 || csp[0] != "sandbox" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("admin invoke answer headers: %v", resp.Header)
	}

	// Wrong tokens from 127.0.0.2: after five in a minute, 429, even with
	// the right token; 127.0.0.1 is not affected.
	evil := client("127.0.0.2")
	for i := range 5 {
		if resp, _ := do(evil, "GET", adm+"/v1/functions", http.Header{"Authorization": {"Bearer guess"}}); resp.StatusCode != 401 {
			t.Fatalf("guess %d: %d", i, resp.StatusCode)
		}
	}
	if resp, _ := do(evil, "GET", adm+"/v1/functions", bearer); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the right token after five guesses: %d, want 429", resp.StatusCode)
	}
	if resp, _ := do(c, "GET", adm+"/v1/functions", bearer); resp.StatusCode != 200 {
		t.Errorf("another address: %d", resp.StatusCode)
	}
}
