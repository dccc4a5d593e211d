// Command stubexec times one step of a cold start: a sandbox stub's exec,
// from the spec sent to the stub until the program runs, for one or more
// stoke binaries against a bare fork/exec of the same program, every
// variant once per round in a new random order. It speaks the stub's
// control protocol (internal/sandbox/stub.go) itself, so it can run main's
// binary and this tree's side by side:
//
//	go build -o /tmp/stoke-main ./cmd/stoke      # in main's tree
//	go build -o /tmp/stoke-new ./cmd/stoke       # in this one
//	go run ./bench/cmd/stubexec -n 100 [-iso] [-trace] main=/tmp/stoke-main new=/tmp/stoke-new
//
// A binary whose stubs take a start in two parts (the config part, then
// the instance's: internal/sandbox/prepare.go) is named with a mode:
// new=/tmp/stoke-new,split sends both parts at the start (a cold start on
// an idle stub); new=/tmp/stoke-new,prepared sends the config part while
// the stub idles and waits until it is prepared, then times the instance's
// part (a cold start on a prepared stub). The same binary may be named
// twice, in both modes.
//
// As root. The program is this binary re-run (it prints a line and exits).
// -iso makes the stubs isolating ones (their own namespaces, the view) and
// runs the program as uid 200950 from a copy it owns. -trace splits each
// stub's exec into steps with kernel tracepoints (a tracefs instance of its
// own, removed at the end): the request read, execve entered, the other
// threads killed (de_thread), the old address space dropped (exit_mmap:
// until the exec renames the task), and the thread count at exec.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	helloEnv = "STUBEXEC_HELLO"
	stubEnv  = "STOKE_SANDBOX_STUB" // internal/sandbox/stub.go
	isoUID   = 200950
	// The namespaces an isolating stub is cloned into (stubNamespaces).
	stubNamespaces = syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS
)

// variant is a stoke binary and how its stubs are handed a start: "" (one
// request, main's protocol before prepared stubs), "split" or "prepared".
type variant struct{ name, bin, mode string }

// sample is one start: send → the control socket's EOF (the exec done),
// send → the program's first line; the stub's threads and its mapped file
// and anonymous memory when idle (kB).
type sample struct {
	exec, line          time.Duration
	threads, file, anon int
}

var (
	iso    = flag.Bool("iso", false, "isolating stubs; the program runs as uid 200950")
	idle   = flag.Duration("idle", 30*time.Millisecond, "how long a stub idles after it is ready, before its spec")
	marker *os.File
)

func main() {
	if os.Getenv(helloEnv) != "" {
		os.Stdout.WriteString("hello\n")
		return
	}
	n := flag.Int("n", 100, "rounds")
	trace := flag.Bool("trace", false, "split each stub's exec into steps with kernel tracepoints")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: stubexec [-n rounds] [-iso] [-trace] name=stoke-binary[,split|,prepared] ...")
		flag.PrintDefaults()
	}
	flag.Parse()
	var vs []variant
	for _, a := range flag.Args() {
		name, bin, ok := strings.Cut(a, "=")
		bin, mode, _ := strings.Cut(bin, ",")
		if !ok || name == "" || bin == "" || (mode != "" && mode != "split" && mode != "prepared") {
			flag.Usage()
			os.Exit(2)
		}
		vs = append(vs, variant{name, bin, mode})
	}
	if len(vs) == 0 || *n < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(vs, *n, *trace); err != nil {
		fmt.Fprintln(os.Stderr, "stubexec:", err)
		os.Exit(1)
	}
}

func run(vs []variant, n int, trace bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	target, err := os.Executable()
	if err != nil {
		return err
	}
	if *iso {
		dir, err := os.MkdirTemp("", "stubexec-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		b, err := os.ReadFile(target)
		if err != nil {
			return err
		}
		target = filepath.Join(dir, "hello")
		if err := os.WriteFile(target, b, 0o755); err != nil {
			return err
		}
		for _, p := range []string{dir, target} {
			if err := os.Chown(p, isoUID, isoUID); err != nil {
				return err
			}
		}
	}
	var tr *tracer
	if trace {
		if tr, err = startTrace(); err != nil {
			return err
		}
		defer tr.close()
		marker = tr.marker
	}
	fmt.Printf("stubexec: %d rounds, isolated %v, %s, load %s\n", n, *iso, time.Now().UTC().Format(time.RFC1123), loadavg())
	res := make([][]sample, len(vs)+1) // the last: bare
	for range n {
		for _, k := range rand.Perm(len(vs) + 1) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var s sample
			if k == len(vs) {
				time.Sleep(*idle) // as a stub idles
				s, err = bare(target)
			} else {
				s, err = viaStub(vs[k], target)
			}
			if err != nil {
				return err
			}
			res[k] = append(res[k], s)
		}
	}
	fmt.Printf("done, load %s\n\n", loadavg())
	report(vs, res)
	if tr != nil {
		steps, err := tr.steps()
		if err != nil {
			return err
		}
		reportSteps(vs, steps)
	}
	return nil
}

// viaStub starts a stub of v, lets it idle, sends it the spec and times
// its exec and the program's first line.
func viaStub(v variant, target string) (sample, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return sample{}, err
	}
	child := os.NewFile(uintptr(fds[1]), "stub-control-child")
	own := os.NewFile(uintptr(fds[0]), "stub-control")
	c, err := net.FileConn(own)
	own.Close()
	if err != nil {
		child.Close()
		return sample{}, err
	}
	ctl := c.(*net.UnixConn)
	defer ctl.Close()
	flavour := "1"
	if *iso {
		flavour = "view"
	}
	cmd := exec.Command(v.bin)
	cmd.Env = []string{stubEnv + "=" + flavour, "GOMAXPROCS=1"} // as the sandbox starts them
	cmd.ExtraFiles = []*os.File{child}
	out, err := cmd.StdoutPipe()
	if err != nil {
		child.Close()
		return sample{}, err
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if *iso {
		cmd.SysProcAttr.Cloneflags = stubNamespaces
	}
	err = cmd.Start()
	child.Close()
	if err != nil {
		return sample{}, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	_ = ctl.SetDeadline(time.Now().Add(30 * time.Second))
	var b [1]byte
	if _, err := ctl.Read(b[:]); err != nil || b[0] != 'R' {
		return sample{}, fmt.Errorf("%s: stub not ready (%q): %v", v.name, b, err)
	}
	time.Sleep(*idle)
	pid := cmd.Process.Pid
	s := idleState(pid)
	req := map[string]any{"Path": target, "Args": []string{target}, "Env": []string{helloEnv + "=1"}, "Files": 0, "NetNS": -1}
	conf := map[string]any{"Path": target, "NetNS": -1}
	if *iso {
		dir := filepath.Dir(target)
		for _, r := range []map[string]any{req, conf} {
			r["Dir"] = dir
			r["Iso"] = map[string]any{"UID": isoUID, "GID": isoUID, "Code": dir}
			r["IDMap"] = []int{-1} // its own files: no idmapped mount
		}
	}
	frame := func(r map[string]any) ([]byte, error) {
		js, err := json.Marshal(r)
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(js))), js...), err
	}
	var msg []byte
	switch v.mode {
	case "":
		msg, err = frame(req)
	case "split":
		var c []byte
		if c, err = frame(conf); err == nil {
			msg, err = frame(map[string]any{"Path": target, "Args": []string{target}, "Env": []string{helloEnv + "=1"}, "Files": 0, "NetNS": -1})
			msg = append(c, msg...)
		}
	case "prepared":
		conf["Ack"] = true
		var c []byte
		if c, err = frame(conf); err == nil {
			if _, err = ctl.Write(c); err == nil {
				if _, err = ctl.Read(b[:]); err == nil && b[0] != 'P' {
					err = fmt.Errorf("not prepared: %q", b)
				}
			}
		}
		if err == nil {
			msg, err = frame(map[string]any{"Path": target, "Args": []string{target}, "Env": []string{helloEnv + "=1"}, "Files": 0, "NetNS": -1})
		}
	}
	if err != nil {
		return sample{}, err
	}
	lines := bufio.NewReader(out)
	if marker != nil {
		fmt.Fprintf(marker, "send %d %s\n", pid, v.name)
	}
	t0 := time.Now()
	if _, err := ctl.Write(msg); err != nil {
		return sample{}, err
	}
	reply := make([]byte, 4096)
	if k, _ := ctl.Read(reply); k > 0 {
		return sample{}, fmt.Errorf("%s: the stub failed: %s", v.name, reply[:k])
	}
	s.exec = time.Since(t0)
	if _, err := lines.ReadString('\n'); err != nil {
		return sample{}, fmt.Errorf("%s: no line from the program: %w", v.name, err)
	}
	s.line = time.Since(t0)
	return s, nil
}

// bare is the baseline: os/exec's fork (vfork) and exec of the program.
func bare(target string) (sample, error) {
	cmd := exec.Command(target)
	cmd.Env = []string{helloEnv + "=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return sample{}, err
	}
	lines := bufio.NewReader(out)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	defer func() { _ = cmd.Wait() }()
	s := sample{exec: time.Since(t0), threads: 1}
	if _, err := lines.ReadString('\n'); err != nil {
		return sample{}, err
	}
	s.line = time.Since(t0)
	return s, nil
}

// idleState reads a stub's thread count and mapped memory: anonymous, and
// file pages mapped one page table entry each (a huge folio of the page
// cache mapped whole by one entry, FilePmdMapped, costs the exec one entry
// to unmap, so it is not counted).
func idleState(pid int) sample {
	var s sample
	for _, name := range []string{"status", "smaps_rollup"} {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name))
		for l := range strings.Lines(string(b)) {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			v, _ := strconv.Atoi(f[1])
			switch f[0] {
			case "Threads:":
				s.threads = v
			case "Rss:":
				s.file += v
			case "Anonymous:":
				s.file -= v
				s.anon = v
			case "FilePmdMapped:", "Shmem:":
				s.file -= v
			}
		}
	}
	return s
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// q is the p-quantile (nearest rank) of xs.
func q[T int | time.Duration](xs []T, p float64) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1)+0.5)]
}

func pick[T any](ss []sample, f func(sample) T) []T {
	out := make([]T, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

func report(vs []variant, res [][]sample) {
	names := append(pick(make([]sample, len(vs)), func(sample) string { return "" }), "bare fork/exec")
	for i, v := range vs {
		names[i] = v.name
	}
	fmt.Println("| variant | starts | exec p50 / p90 / p99 | first line p50 / p90 / p99 | idle: threads, file (by PTE) / anon kB (p50) |")
	fmt.Println("|---|---|---|---|---|")
	for k, ss := range res {
		ex, li := pick(ss, func(s sample) time.Duration { return s.exec }), pick(ss, func(s sample) time.Duration { return s.line })
		idle := "—"
		if k < len(vs) {
			idle = fmt.Sprintf("%d, %d / %d", q(pick(ss, func(s sample) int { return s.threads }), .5),
				q(pick(ss, func(s sample) int { return s.file }), .5), q(pick(ss, func(s sample) int { return s.anon }), .5))
		}
		fmt.Printf("| %s | %d | %.3f / %.3f / %.3f ms | %.3f / %.3f / %.3f ms | %s |\n", names[k], len(ss),
			ms(q(ex, .5)), ms(q(ex, .9)), ms(q(ex, .99)), ms(q(li, .5)), ms(q(li, .9)), ms(q(li, .99)), idle)
	}
	perRound := func(a, b []sample) string {
		d := make([]time.Duration, len(a))
		for i := range d {
			d[i] = a[i].line - b[i].line
		}
		return fmt.Sprintf("median %+.3f ms (10th–90th percentile %+.3f to %+.3f)", ms(q(d, .5)), ms(q(d, .1)), ms(q(d, .9)))
	}
	for k, v := range vs {
		fmt.Printf("first line, %s − bare, per round: %s\n", v.name, perRound(res[k], res[len(vs)]))
	}
	for k, v := range vs[1:] {
		fmt.Printf("first line, %s − %s, per round: %s\n", v.name, vs[0].name, perRound(res[k+1], res[0]))
	}
}
