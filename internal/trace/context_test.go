package trace

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestTraceparentContinued(t *testing.T) {
	h := http.Header{}
	h.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.Set("X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793") // traceparent wins
	c := FromHeaders(h)
	if c.TraceID.String() != "4bf92f3577b34da6a3ce929d0e0e4736" || c.Parent.String() != "00f067aa0ba902b7" || !c.Sampled {
		t.Fatalf("continued %+v", c)
	}
	if !c.Gateway.IsValid() || !c.Invoke.IsValid() || c.Gateway == c.Invoke {
		t.Fatalf("span ids %v %v", c.Gateway, c.Invoke)
	}
	c.Inject(h)
	if got, want := h.Get("Traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-"+c.Invoke.String()+"-01"; got != want {
		t.Errorf("traceparent %s, want %s", got, want)
	}
	if got, want := h.Get("X-Amzn-Trace-Id"), "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent="+c.Invoke.String()+";Sampled=1"; got != want {
		t.Errorf("X-Amzn-Trace-Id %s, want %s", got, want)
	}

	c, ok := ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	if !ok || c.Sampled || !strings.HasSuffix(c.Traceparent(), "-00") || !strings.HasSuffix(c.XRay(), ";Sampled=0") {
		t.Errorf("unsampled: %v %+v %s %s", ok, c, c.Traceparent(), c.XRay())
	}
	// A later version may add fields after the four it shares with 00.
	if _, ok := ParseTraceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-bring"); !ok {
		t.Error("a future version's traceparent should be read")
	}
}

func TestTraceparentInvalid(t *testing.T) {
	for _, s := range []string{
		"",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",      // no flags
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace id
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero parent
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // uppercase
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // 00 has exactly four fields
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
	} {
		if c, ok := ParseTraceparent(s); ok {
			t.Errorf("%q parsed as %+v", s, c)
		}
	}
	h := http.Header{"Traceparent": {"garbage"}}
	if c := FromHeaders(h); !c.Valid() || c.Parent.IsValid() {
		t.Errorf("garbage traceparent should start a new trace: %+v", c)
	}
}

func TestXRayContinued(t *testing.T) {
	c, ok := ParseXRay("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1|68fd508a:5")
	if !ok || c.TraceID.String() != "5759e988bd862e3fe1be46a994272793" || c.Parent.String() != "53995c3f42cd8ad8" || !c.Sampled {
		t.Fatalf("%v %+v", ok, c)
	}
	if !strings.HasPrefix(c.XRay(), "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=") {
		t.Errorf("X-Ray id not kept: %s", c.XRay())
	}
	if !strings.HasPrefix(c.Traceparent(), "00-5759e988bd862e3fe1be46a994272793-") {
		t.Errorf("traceparent of an X-Ray trace: %s", c.Traceparent())
	}
	// An ALB sends only the root; the trace starts here, sampled.
	c, ok = ParseXRay("Self=1-67891234-12456789abcdef012345678;Root=1-67891233-abcdef012345678912345678")
	if !ok || c.Parent.IsValid() || !c.Sampled || c.TraceID.String() != "67891233abcdef012345678912345678" {
		t.Errorf("root only: %v %+v", ok, c)
	}
	if c, ok := ParseXRay("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0"); !ok || c.Sampled {
		t.Errorf("Sampled=0: %v %+v", ok, c)
	}
	for _, s := range []string{"", "Parent=53995c3f42cd8ad8", "Root=1-5759e988-bd862e3fe1be46a99427279", "Root=2-5759e988-bd862e3fe1be46a994272793", "Root=1-00000000-000000000000000000000000"} {
		if c, ok := ParseXRay(s); ok {
			t.Errorf("%q parsed as %+v", s, c)
		}
	}
}

func TestNewContextIsXRayCompatible(t *testing.T) {
	before := time.Now().Unix()
	c := NewContext()
	epoch := int64(binary.BigEndian.Uint32(c.TraceID[:4]))
	if epoch < before || epoch > time.Now().Unix() || !c.Sampled || c.Parent.IsValid() {
		t.Fatalf("new trace %+v: epoch %d", c, epoch)
	}
	back, ok := ParseXRay(c.XRay())
	if !ok || back.TraceID != c.TraceID || back.Parent != c.Invoke {
		t.Errorf("X-Ray round trip: %s -> %+v", c.XRay(), back)
	}
	back, ok = ParseTraceparent(c.Traceparent())
	if !ok || back.TraceID != c.TraceID || back.Parent != c.Invoke {
		t.Errorf("traceparent round trip: %s -> %+v", c.Traceparent(), back)
	}
	if NewContext().TraceID == c.TraceID {
		t.Error("two new traces share an id")
	}
}

// BenchmarkFromHeadersInject is what tracing adds to a request before the
// function runs: ids made or continued, and the two headers set.
func BenchmarkFromHeadersInject(b *testing.B) {
	for _, in := range []string{"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"} {
		b.Run(fmt.Sprintf("traceparent=%v", in != ""), func(b *testing.B) {
			h := http.Header{}
			b.ReportAllocs()
			for b.Loop() {
				delete(h, "X-Amzn-Trace-Id")
				h["Traceparent"] = []string{in}
				c := FromHeaders(h)
				c.Inject(h)
			}
		})
	}
}
