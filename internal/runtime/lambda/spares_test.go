package lambdart

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"
)

// spareAddr is the address of the listener sp holds for rt, "" if none.
func spareAddr(sp *Spares, rt *Runtime) string {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for _, s := range sp.held {
		if s.rt == rt {
			return s.l.Addr().String()
		}
	}
	return ""
}

// waitSpare waits until sp holds a listener for rt and returns its address.
func waitSpare(t *testing.T, sp *Spares, rt *Runtime) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if a := spareAddr(sp, rt); a != "" {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatal("no listener made ahead after 10 s")
		}
	}
}

// waitClosed waits until nothing listens on addr any more.
func waitClosed(t *testing.T, addr, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s still listens after 10 s", what, addr)
		}
	}
}

// withSpares gives rt sp, and closes rt with the test.
func withSpares(t *testing.T, rt *Runtime, sp *Spares) *Runtime {
	rt.o.Spares = sp
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

// startOn starts an instance of rt, stopped with the test.
func startOn(t *testing.T, rt *Runtime) *Instance {
	t.Helper()
	inst, err := rt.Start(context.Background(), instanceID())
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { inst.Stop(context.Background()) })
	return inst.(*Instance)
}

// After a cold start a listener is made ahead for the function; the next
// cold start's Runtime API is that one, and a connection made to it
// before that instance existed is closed unread.
func TestSpareListenerServesNextColdStart(t *testing.T) {
	checkNoLeaks(t)
	sp := NewSpares(4, slog.New(slog.DiscardHandler))
	t.Cleanup(sp.Close)
	rt := withSpares(t, newRuntime(t, function(t, "echo"), nil), sp)
	first := startOn(t, rt)
	addr := waitSpare(t, sp, rt)
	if addr == first.RuntimeAPI() {
		t.Fatalf("the spare is the running instance's Runtime API %s", addr)
	}
	early, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	second := startOn(t, rt)
	if got := second.RuntimeAPI(); got != addr {
		t.Fatalf("the next cold start listens on %s, not on the listener made ahead %s", got, addr)
	}
	_ = early.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ne net.Error
	if n, err := early.Read(make([]byte, 1)); err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("a connection made before the instance existed was kept (read %d bytes, %v)", n, err)
	}
	for _, in := range []*Instance{first, second} {
		if _, res, err := invoke(t, in, `{"n":1}`, 5*time.Second); err != nil || res.FunctionError != "" {
			t.Fatalf("invoke %s: %v %+v", in.id, err, res)
		}
	}
	// The second start made the next one's.
	if next := waitSpare(t, sp, rt); next == addr || next == first.RuntimeAPI() {
		t.Fatalf("the next spare %s is in use", next)
	}
}

// A spare is handed only to its own function version's instances; the
// bound drops the least recently made; Discard and Runtime.Close close
// them, and a closed Runtime gets no more.
func TestSpareListenerLifecycle(t *testing.T) {
	checkNoLeaks(t)
	sp := NewSpares(1, slog.New(slog.DiscardHandler))
	t.Cleanup(sp.Close)
	fb := function(t, "echo")
	fb.Name = "t-echo-b"
	a := withSpares(t, newRuntime(t, function(t, "echo"), nil), sp)
	// One sandbox manager for both, as in a server.
	ob := a.o
	ob.Function, ob.Spares = fb, nil
	b := withSpares(t, New(ob), sp)

	startOn(t, a)
	addrA := waitSpare(t, sp, a)
	if l := sp.take(b); l != nil {
		l.Close()
		t.Fatal("another function was handed a listener made for a")
	}
	if in := startOn(t, b); in.RuntimeAPI() == addrA {
		t.Fatal("b's instance listens on a's spare")
	}
	addrB := waitSpare(t, sp, b)
	// At most one is kept: a's, the older, is closed.
	waitClosed(t, addrA, "the spare beyond the bound")
	if spareAddr(sp, a) != "" {
		t.Fatal("a's spare is still held beyond the bound")
	}

	sp.Discard()
	if spareAddr(sp, b) != "" {
		t.Fatal("a spare is held after Discard")
	}
	waitClosed(t, addrB, "the spare after Discard")

	startOn(t, b)
	addrB = waitSpare(t, sp, b)
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if spareAddr(sp, b) != "" {
		t.Fatal("a spare is held after its Runtime's Close")
	}
	waitClosed(t, addrB, "the spare after its Runtime's Close")
	sp.refill(b)
	sp.mu.Lock()
	making := len(sp.making)
	sp.mu.Unlock()
	if making != 0 || spareAddr(sp, b) != "" {
		t.Fatal("a listener is made ahead for a closed Runtime")
	}
}
