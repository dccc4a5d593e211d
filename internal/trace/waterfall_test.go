package trace

import (
	"strings"
	"testing"
	"time"
)

func TestWaterfall(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms float64) time.Time { return t0.Add(msDur(ms)) }
	span := func(name string, from, to float64) Span {
		return Span{Name: name, Start: at(from), End: at(to), DurationMS: to - from}
	}
	tr := &Trace{RequestID: "req-1", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Function: "hello", Version: "3", Cold: true, Status: 200,
		Spans: []Span{span("gateway", 0, 20), span("queue", 0, 15), span("init", 1, 15), span("invoke", 15, 19), span("tiny", 19.9, 19.95)}}
	var b strings.Builder
	if err := Waterfall(&b, tr, 20); err != nil {
		t.Fatal(err)
	}
	want := `request req-1  trace 4bf92f3577b34da6a3ce929d0e0e4736
hello:3  cold  status 200

gateway  ████████████████████    20.0 ms
queue    ███████████████         15.0 ms
init      ██████████████         14.0 ms  (cold)
invoke                  ████      4.0 ms
tiny                        █     0.1 ms
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}

	// A failed request says why on its span; bars never leave the root's.
	tr = &Trace{RequestID: "req-2", Function: "f", Version: "1", Status: 429,
		Spans: []Span{span("gateway", 0, 2), {Name: "queue", Start: at(-1), End: at(3), DurationMS: 4, Error: "TooManyRequestsException"}}}
	b.Reset()
	if err := Waterfall(&b, tr, 10); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if lines[1] != "f:1  warm  status 429" || lines[4] != "queue    ██████████     4.0 ms  (TooManyRequestsException)" {
		t.Errorf("got\n%s", b.String())
	}
}
