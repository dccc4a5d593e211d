package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/config"
)

// client talks to a running Stoke's admin API.
type client struct {
	base  string
	token string
	http  *http.Client
	// Where the address and the token came from, for error messages.
	addrFrom, tokenFrom string
}

func (c *client) do(method, path string, body io.Reader, header http.Header) (*http.Response, error) {
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	hc := c.http
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Stoke's admin API at %s (from %s): is `stoke serve` running with that config? %w", c.base, c.addrFrom, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		resp.Body.Close()
		return nil, fmt.Errorf("the admin API at %s (from %s) refused the token from %s: it wants the admin.token of the config that server runs with, or its data_dir/admin-token; name that config with -f, or give --token", c.base, c.addrFrom, c.tokenFrom)
	}
	return resp, nil
}

// getJSON GETs path and decodes the JSON answer into v.
func (c *client) getJSON(path string, v any) error {
	resp, err := c.do("GET", path, nil, nil)
	if err != nil {
		return err
	}
	return decode(resp, v)
}

func decode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return apiError(resp)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// apiError turns an admin API error answer into an error with its message.
func apiError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return errors.New(e.Error)
	}
	return fmt.Errorf("admin API answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
}

// unknownFunction is "" when name is deployed, else an error naming the
// deployed functions: an empty answer about a mistyped name must not read
// as "no traffic".
func (c *client) unknownFunction(name string) error {
	var fns []admin.FunctionInfo
	if err := c.getJSON("/v1/functions", &fns); err != nil {
		return nil // the question was answered; this is only a hint
	}
	names := make([]string, 0, len(fns))
	for _, f := range fns {
		if f.Name == name {
			return nil
		}
		names = append(names, f.Name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return fmt.Errorf("no function %s is deployed at %s (none is: deploy with stoke deploy -f stoke.yaml)", name, c.base)
	}
	return fmt.Errorf("no function %s is deployed at %s; deployed: %s", name, c.base, strings.Join(names, ", "))
}

func fnPath(name, rest string) string { return "/v1/functions/" + url.PathEscape(name) + rest }

// adminHTTPClient talks to the admin API, trusting its own certificate
// (admin.tls.cert) besides the system's roots, so a self-signed one works.
func adminHTTPClient(t config.TLS) (*http.Client, error) {
	tr := adminTransport()
	if !t.On() {
		return &http.Client{Transport: tr}, nil
	}
	pem, err := os.ReadFile(t.Cert)
	if err != nil {
		return nil, fmt.Errorf("admin.tls.cert: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("admin.tls.cert %s holds no PEM certificate", t.Cert)
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}

// adminTransport bounds every wait on the admin API but the answer's body
// (logs --follow streams it): the connection, the TLS handshake, and the
// response's head, which a deploy (builds, up to 10 min each, then
// keep_warm starts) or a tune sends only once it is done.
func adminTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.ResponseHeaderTimeout = time.Hour
	return tr
}
