package gateway_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/gateway"
	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/runtime/httpwire"
)

// forwarded asks the app what forwarded fields reached it, sending a
// client's claims.
func forwarded(t *testing.T, url string) map[string]string {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/fwd", nil)
	req.Host = "api.example.com"
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("Forwarded", "for=6.6.6.6;proto=https")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := map[string]string{}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	return got
}

// The one forwarded-header policy, end to end: a client's claims replaced,
// a trusted proxy's kept, whatever the runtime.
func TestForwardedPolicy(t *testing.T) {
	f := newFixture(t, 5*time.Second)
	fn := f.function("a", "A", 5*time.Second, pool.Options{}, "/fwd")
	f.gw.Set([]*gateway.Function{fn})
	_, port, _ := net.SplitHostPort(f.srv.Listener.Addr().String())

	got := forwarded(t, f.srv.URL)
	want := map[string]string{
		"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "api.example.com", "X-Forwarded-Proto": "http",
		"X-Forwarded-Port": port, "Forwarded": "for=127.0.0.1;host=api.example.com;proto=http",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("untrusted client: %s = %q, want %q", k, got[k], v)
		}
	}

	trusting := gateway.New(gateway.Options{Timeout: 5 * time.Second, MaxBodyBytes: 1 << 20, Recorder: f.rec,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	trusting.Set([]*gateway.Function{fn})
	srv := httptest.NewServer(trusting)
	defer srv.Close()
	got = forwarded(t, srv.URL)
	want = map[string]string{
		"X-Forwarded-For": "6.6.6.6, 127.0.0.1", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
		"Forwarded": "for=6.6.6.6;proto=https, for=127.0.0.1;host=api.example.com;proto=http",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("trusted proxy: %s = %q, want %q", k, got[k], v)
		}
	}
}

// A request no app may be sent is answered 400 before it reaches the
// instance, which stays in the pool: the next request is warm on it.
func TestInvalidRequestKeepsTheInstance(t *testing.T) {
	f := newFixture(t, 5*time.Second)
	f.gw.Set([]*gateway.Function{f.function("a", "A", 5*time.Second, pool.Options{MaxInstances: 1}, "/a")})
	run := func(hdr string) gateway.Outcome {
		req := httptest.NewRequest("GET", "/a", nil)
		req.Header["X-A"] = []string{hdr}
		return f.gw.Run(context.Background(), gateway.Call{Function: "a", RequestID: hdr[:1],
			Do: func(ctx context.Context, inst runtime.Instance) error {
				return inst.Invoke(&httpwire.Capture{Limit: 1 << 10}, req.WithContext(ctx))
			}})
	}
	first := run("1")
	bad := run("2\r\nX-Smuggled: 1")
	next := run("3")
	if first.Err != nil || next.Err != nil {
		t.Fatalf("valid requests failed: %v, %v", first.Err, next.Err)
	}
	if bad.Status != http.StatusBadRequest || bad.ErrorType != "InvalidRequestContentException" ||
		bad.Record.Status != http.StatusBadRequest {
		t.Errorf("invalid request: %d %s %q", bad.Status, bad.ErrorType, bad.Message)
	}
	if next.Record.Cold || next.Record.InstanceID != first.Record.InstanceID || bad.Record.InstanceID != first.Record.InstanceID {
		t.Errorf("instances %s, %s, %s (next cold %t): the invalid request cost the instance",
			first.Record.InstanceID, bad.Record.InstanceID, next.Record.InstanceID, next.Record.Cold)
	}
}
