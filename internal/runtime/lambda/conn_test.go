package lambdart

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/runtime"
)

// The invoker reads the answer off the connection it wrote the event to;
// an answer posted on another connection reaches it all the same (the
// read is interrupted), and the bootstrap's own later answer is refused.
func TestAnswerOnAnotherConnection(t *testing.T) {
	checkNoLeaks(t)
	in := start(t, function(t, "echo"), nil)
	hold := filepath.Join(t.TempDir(), "release")
	payload, _ := json.Marshal(map[string]string{"holdFile": hold})
	type result struct {
		res *runtime.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		_, res, err := invoke(t, in, string(payload), 10*time.Second)
		done <- result{res, err}
	}()
	var id string
	for deadline := time.Now().Add(10 * time.Second); id == ""; time.Sleep(time.Millisecond) {
		in.mu.Lock()
		if in.state == stateInvoking && in.call != nil {
			id = in.call.inv.RequestID
		}
		in.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("the bootstrap never took the event")
		}
	}
	if st, body := post(t, in, "POST", "/runtime/invocation/"+id+"/response"); st != http.StatusAccepted {
		t.Fatalf("answer on a second connection: %d %s", st, body)
	}
	select {
	case r := <-done:
		if r.err != nil || string(r.res.Payload) != `"x"` {
			t.Fatalf("invoke: %v %+v, want the second connection's answer", r.err, r.res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the invoker did not see the answer posted on another connection")
	}
	if err := os.WriteFile(hold, nil, 0o644); err != nil { // the bootstrap answers too, late
		t.Fatal(err)
	}
}

// A bootstrap whose waiting /next connection closed before an event came
// does not lose the event: it goes to its next /next.
func TestNextConnectionClosedBeforeEvent(t *testing.T) {
	checkNoLeaks(t)
	in := start(t, function(t, "echo"), nil)
	// A second poller (the test, on its own connection) parks a /next and
	// hangs up; the real bootstrap's /next stays parked.
	nc, err := net.Dial("tcp", in.RuntimeAPI())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+in.RuntimeAPI()+apiBasePath+"/runtime/invocation/next", nil)
	if err := req.Write(nc); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		in.mu.Lock()
		n := len(in.nexts)
		in.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d parked /next calls, want the bootstrap's and the test's", n)
		}
	}
	// Make the test's the oldest: the bootstrap's goes back in behind it.
	in.mu.Lock()
	if in.nexts[0].c.nc.RemoteAddr().String() != nc.LocalAddr().String() {
		in.nexts[0], in.nexts[1] = in.nexts[1], in.nexts[0]
	}
	hungUp := in.nexts[0].c
	in.mu.Unlock()
	nc.Close()
	// "Before the event came" as Stoke sees it: on a loaded machine the
	// FIN can reach the socket after the next call, and an event written
	// to a connection that is closing as it is written is the bootstrap's
	// to have or not (as with any HTTP server).
	for deadline := time.Now().Add(5 * time.Second); !hungUp.peerClosed(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the hang-up never reached Stoke's side of the connection")
		}
	}
	_, res, err := invoke(t, in, `{"a":1}`, 5*time.Second)
	if err != nil || res.FunctionError != "" || !strings.Contains(string(res.Payload), `"event":{"a":1}`) {
		t.Fatalf("invoke after a /next hung up: %v %+v", err, res)
	}
}

// The Runtime API answers what it cannot read as an HTTP server does, and
// keeps serving.
func TestRuntimeAPIBadRequests(t *testing.T) {
	checkNoLeaks(t)
	in := start(t, function(t, "echo"), nil)
	send := func(raw string) string {
		t.Helper()
		nc, err := net.Dial("tcp", in.RuntimeAPI())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Write([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(nc).ReadString('\n')
		return strings.TrimSpace(line)
	}
	if got := send("NOT HTTP\r\n\r\n"); got != "HTTP/1.1 400 Bad Request" {
		t.Errorf("garbage: %q", got)
	}
	if got := send("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 80<<10) + "\r\n\r\n"); got != "HTTP/1.1 431 Request Header Fields Too Large" {
		t.Errorf("80 KB head: %q", got)
	}
	if got := send("GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"); got != "HTTP/1.1 404 Not Found" {
		t.Errorf("unknown path: %q", got)
	}
	if _, res, err := invoke(t, in, `{}`, 5*time.Second); err != nil || res.FunctionError != "" {
		t.Fatalf("after: %v %+v", err, res)
	}
}
