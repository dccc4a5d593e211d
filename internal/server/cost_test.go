package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/admin"
	"github.com/stokehq/stoke/internal/cost"
	"github.com/stokehq/stoke/internal/sandbox/sandboxtest"
)

// A keep_warm function is charged for keeping warm, in the keep-warm
// column and in the keep-alive replay alike, from when it was deployed on
// this server, not from the start of a window that began before: a
// function a second old kept 10,799.7 GB-s idle in a 24-hour window's
// replay (128 MB × 24 h), and a function deployed after the server
// started paid keep-warm from the server's start.
func TestCostKeepWarmFromDeploy(t *testing.T) {
	sandboxtest.CheckNoLeaks(t)
	dir := t.TempDir()
	app := sandboxtest.InDir(t, dir)
	fn := func(name, version string) string {
		return fmt.Sprintf(`  %s:
    runtime: http
    command: [%q]
    memory: 128
    keep_warm: 1
    routes: [/%s/*]
    env: {STOKE_SRV_APP: "1", V: %q}
`, name, app, name, version)
	}
	head := "listen: 127.0.0.1:0\nadmin: {listen: \"127.0.0.1:0\"}\nfunctions:\n"
	yaml := head + fn("f", "1")
	beforeF := time.Now()
	s := serve(t, dir, yaml)

	resp, err := http.Get("http://" + s.GatewayAddr() + "/f/x")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("request: %d", resp.StatusCode)
	}

	// g is deployed after the server started (and after f's request).
	beforeG := time.Now()
	if _, err := s.Deploy(context.Background(), filepath.Join(dir, "stoke.yaml"), []byte(yaml+fn("g", "1"))); err != nil {
		t.Fatal(err)
	}

	var price cost.Prices
	report := func() map[string]cost.Summary {
		var rep admin.CostReport
		waitFor(func() bool {
			r, body := adminReq(t, s, "GET", "/v1/cost?since=24h", s.Token())
			rep = admin.CostReport{}
			if r.StatusCode != 200 || json.Unmarshal(body, &rep) != nil {
				t.Fatalf("cost: %d %s", r.StatusCode, body)
			}
			return len(rep.Functions) == 2 && rep.Functions[0].Invocations == 1
		})
		price = rep.Prices
		by := map[string]cost.Summary{}
		for _, f := range rep.Functions {
			by[f.Function] = f
		}
		return by
	}
	by := report()
	now := time.Now()
	f, g := by["f"], by["g"]
	if f.Invocations != 1 || f.KeepAlive == nil {
		t.Fatalf("f: %+v", f)
	}
	gb := func(d time.Duration) float64 { return cost.GBSeconds(float64(d.Milliseconds()), 128) }

	// f's replay: its keep_warm instance, idle but for the request, at
	// most since f was deployed.
	if ka := f.KeepAlive; ka.IdleGBSeconds > gb(now.Sub(beforeF)) || ka.IdleGBSeconds <= 0 {
		t.Errorf("f's replay kept %v GB-s idle; deployed %v ago, at most %v GB-s", ka.IdleGBSeconds, now.Sub(beforeF), gb(now.Sub(beforeF)))
	}
	if ka := f.KeepAlive; ka.Since.Before(beforeF) || ka.Since.After(now) {
		t.Errorf("f's replay from %v; deployed after %v", ka.Since, beforeF)
	}
	// The keep-warm column and the replay's idle memory price the same
	// span: the replay's idle is at most the column's (the request's
	// duration was busy, not idle), give or take the column's
	// granularity: it prices whole milliseconds (Prices.KeepWarm), the
	// replay nanoseconds, so a request shorter than the dropped fraction
	// leaves the replay up to 1 ms of 128 MB above it (failed once so).
	if f.KeepAlive.IdleCost > f.KeepWarmCost+price.KeepWarm(1, 128, time.Millisecond) {
		t.Errorf("f: replay's idle %v > the keep-warm column's %v", cost.Dollars(f.KeepAlive.IdleCost), cost.Dollars(f.KeepWarmCost))
	}
	if f.KeepWarmSince.Before(beforeF) || f.KeepWarmSince.After(beforeG) {
		t.Errorf("f charged keep-warm from %v; deployed between %v and %v", f.KeepWarmSince, beforeF, beforeG)
	}

	// g: keep-warm since its own deploy, not the server's start; no
	// invocations, so no replay.
	if g.KeepWarmSince.Before(beforeG) || g.KeepWarmSince.After(now) {
		t.Errorf("g charged keep-warm from %v; deployed after %v", g.KeepWarmSince, beforeG)
	}
	if want := price.KeepWarm(1, 128, now.Sub(beforeG)); g.KeepWarmCost > want || g.KeepWarmCost <= 0 || g.KeepAlive != nil {
		t.Errorf("g: keep-warm %s, at most %s (1 × 128 MB for %v); keep_alive %+v", cost.Dollars(g.KeepWarmCost), cost.Dollars(want), now.Sub(beforeG), g.KeepAlive)
	}

	// A redeploy of f (a new version) keeps f's keep-warm start: the
	// function has been kept warm all along.
	if _, err := s.Deploy(context.Background(), filepath.Join(dir, "stoke.yaml"), []byte(head+fn("f", "2")+fn("g", "1"))); err != nil {
		t.Fatal(err)
	}
	if f2 := report()["f"]; !f2.KeepWarmSince.Equal(f.KeepWarmSince) {
		t.Errorf("after a new version of f, keep-warm from %v, before %v", f2.KeepWarmSince, f.KeepWarmSince)
	}
}
