package sandbox_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stokehq/stoke/internal/sandbox"
)

// mappedFileKB sums, over pid's mappings of files that are not writable
// (text, read-only data, libraries), the page-cache pages mapped one page
// table entry each: Rss less Anonymous (a library's relocated RELRO is its
// own) less FilePmdMapped (a huge folio of the page cache mapped whole by
// one entry, as a stub does again within a second of idling: one entry to
// unmap, not 512).
func mappedFileKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Fatal(err)
	}
	kb, counting := 0, false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		switch {
		case len(f) >= 5 && bytes.IndexByte(f[0], '-') > 0 && len(f[1]) == 4:
			// start-end perms offset dev inode [path]
			counting = f[1][1] != 'w' && string(f[4]) != "0" && (len(f) < 6 || f[5][0] != '[')
		case counting && len(f) >= 2 && (string(f[0]) == "Rss:" || string(f[0]) == "Anonymous:" || string(f[0]) == "FilePmdMapped:"):
			n, err := strconv.Atoi(string(f[1]))
			if err != nil {
				t.Fatal(err)
			}
			if string(f[0]) != "Rss:" {
				n = -n
			}
			kb += n
		}
	}
	return kb
}

// An idle stub has dropped the pages of its binary from its page tables
// (stubtrim.go), which its exec would otherwise spend ~2 ms unmapping: it
// maps far less of it than a fresh process of the same binary after the
// same initialisation. A process still works after dropping them (its
// libraries' RELRO intact: new threads start, programs run).
func TestIdleStubDroppedFilePages(t *testing.T) {
	m := newManager(t, sandbox.Options{Stubs: 1}, &syncBuffer{})
	fresh := exec.Command(self(t))
	fresh.Env = []string{childEnv + "=readysleep", "GOMAXPROCS=1"}
	out, err := fresh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fresh.Process.Kill(); _ = fresh.Wait() })
	if l, err := bufio.NewReader(out).ReadString('\n'); err != nil || l != "ready\n" {
		t.Fatalf("fresh process said %q, %v", l, err)
	}
	waitStubs(t, m, 1)
	pids := sandbox.IdleStubPids(m)
	if len(pids) != 1 {
		t.Fatalf("idle stubs %v", pids)
	}
	stub, plain := mappedFileKB(t, pids[0]), mappedFileKB(t, fresh.Process.Pid)
	t.Logf("read-only file pages mapped: idle stub %d kB, a fresh process of the same binary %d kB", stub, plain)
	if stub*3 > plain*2 { // ~1/3 here; a stub that kept its pages maps more than plain
		t.Errorf("idle stub maps %d kB of read-only files, a fresh process %d kB: want under two thirds", stub, plain)
	}

	before := mappedFileKB(t, os.Getpid())
	if err := sandbox.DropFilePages(); err != nil {
		t.Fatal(err)
	}
	after := mappedFileKB(t, os.Getpid())
	t.Logf("this process: %d kB before DropFilePages, %d kB after", before, after)
	if after >= before { // not less: the test's own goroutines map some back at once
		t.Errorf("%d kB mapped after DropFilePages, %d kB before: want fewer", after, before)
	}
	// Still sound: new threads (through cgo's pthread_create, where the
	// binary links libc, which a discarded RELRO would crash) and a start.
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer close(done)
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		}()
		<-done
		done = make(chan struct{})
	}
	var c collector
	p := stubStart(t, m, sandbox.Spec{ID: "after-drop", Output: c.add, Env: []string{childEnv + "=hello"}})
	if ex := waitDone(t, p, 10*time.Second); ex.Code != 0 {
		t.Fatalf("start after DropFilePages: exit %+v, output %q", ex, c.get())
	}
}
