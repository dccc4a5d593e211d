package main

// -trace: the steps of each stub's exec from kernel tracepoints, in a
// tracefs instance of this process's own that follows only its children.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const tracefs = "/sys/kernel/tracing"

// The events, in the order a stub's exec passes them. sched_prepare_exec
// fires in begin_new_exec before de_thread; task_rename after exec_mmap
// (the old address space dropped) and the close-on-exec files closed.
var traceEvents = []string{
	"syscalls/sys_exit_recvmsg", "syscalls/sys_enter_execve", "sched/sched_prepare_exec",
	"sched/sched_process_exit", "task/task_rename",
}

type tracer struct {
	dir    string
	marker *os.File
}

func startTrace() (*tracer, error) {
	dir := filepath.Join(tracefs, "instances", fmt.Sprintf("stubexec-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("make a tracefs instance (as root, tracefs at %s): %w", tracefs, err)
	}
	t := &tracer{dir: dir}
	// Every thread of this process, and (event-fork) every task they
	// make from now on: more threads, the stubs, their threads, the
	// programs.
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.close()
		return nil, err
	}
	var tids []string
	for _, e := range tasks {
		tids = append(tids, e.Name())
	}
	settings := [][2]string{
		{"buffer_size_kb", "8192"}, {"options/record-tgid", "1"}, {"options/event-fork", "1"},
		{"set_event_pid", strings.Join(tids, " ")},
	}
	for _, e := range traceEvents {
		settings = append(settings, [2]string{"events/" + e + "/enable", "1"})
	}
	settings = append(settings, [2]string{"tracing_on", "1"})
	for _, s := range settings {
		if err := os.WriteFile(filepath.Join(dir, s[0]), []byte(s[1]), 0); err != nil {
			t.close()
			return nil, fmt.Errorf("tracefs %s: %w", s[0], err)
		}
	}
	m, err := os.OpenFile(filepath.Join(dir, "trace_marker"), os.O_WRONLY, 0)
	if err != nil {
		t.close()
		return nil, err
	}
	t.marker = m
	return t, nil
}

func (t *tracer) close() {
	_ = os.WriteFile(filepath.Join(t.dir, "tracing_on"), []byte("0"), 0)
	if t.marker != nil {
		t.marker.Close()
	}
	if err := os.Remove(t.dir); err != nil {
		fmt.Fprintln(os.Stderr, "stubexec: tracefs instance left behind:", err)
	}
}

// stubTrace is one stub's exec, in ms of the trace clock.
type stubTrace struct {
	variant                          string
	send, recv, execve, prep, rename float64
	exits                            []float64
}

var (
	traceLine = regexp.MustCompile(`^.*-(\d+)\s+\(\s*(\d+|-+)\)\s+\[\d+\]\s+\S+\s+(\d+\.\d+): (\w+)(.*)$`)
	sendLine  = regexp.MustCompile(`send (\d+) (\S+)`)
)

// steps reads the trace: per variant, each step's durations.
func (t *tracer) steps() (map[string]map[string][]time.Duration, error) {
	_ = os.WriteFile(filepath.Join(t.dir, "tracing_on"), []byte("0"), 0)
	b, err := os.ReadFile(filepath.Join(t.dir, "trace"))
	if err != nil {
		return nil, err
	}
	stubs := map[int]*stubTrace{}
	for l := range strings.Lines(string(b)) {
		m := traceLine.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		tid, _ := strconv.Atoi(m[1])
		tgid, _ := strconv.Atoi(m[2]) // 0 when unknown
		ts, _ := strconv.ParseFloat(m[3], 64)
		ts *= 1e3
		ev, rest := m[4], m[5]
		if ev == "tracing_mark_write" {
			if sm := sendLine.FindStringSubmatch(rest); sm != nil {
				pid, _ := strconv.Atoi(sm[1])
				stubs[pid] = &stubTrace{variant: sm[2], send: ts}
			}
			continue
		}
		s := stubs[tid]
		if ev == "sched_process_exit" {
			if s = stubs[tgid]; s != nil && tid != tgid && s.prep > 0 && s.rename == 0 {
				s.exits = append(s.exits, ts)
			}
			continue
		}
		if s == nil {
			continue
		}
		switch {
		case ev == "sys_recvmsg" && s.recv == 0:
			s.recv = ts
		case ev == "sys_execve" && s.execve == 0:
			s.execve = ts
		case ev == "sched_prepare_exec" && s.prep == 0:
			s.prep = ts
		case ev == "task_rename" && s.prep > 0 && s.rename == 0:
			s.rename = ts
		}
	}
	out := map[string]map[string][]time.Duration{}
	d := func(a, b float64) time.Duration { return time.Duration((b - a) * 1e6) }
	for _, s := range stubs {
		if s.recv == 0 || s.execve == 0 || s.prep == 0 || s.rename == 0 {
			continue
		}
		dead := s.prep
		for _, e := range s.exits {
			dead = max(dead, e)
		}
		o := out[s.variant]
		if o == nil {
			o = map[string][]time.Duration{}
			out[s.variant] = o
		}
		for k, v := range map[string]time.Duration{
			stepNames[0]: d(s.send, s.recv), stepNames[1]: d(s.recv, s.execve), stepNames[2]: d(s.execve, s.prep),
			stepNames[3]: d(s.prep, dead), stepNames[4]: d(dead, s.rename), stepNames[5]: d(s.send, s.rename),
			stepNames[6]: time.Duration(len(s.exits)),
		} {
			o[k] = append(o[k], v)
		}
	}
	return out, nil
}

var stepNames = []string{
	"the stub wakes, reads the spec",
	"decode, isolate, until execve",
	"execve: open, read, credentials",
	"de_thread: the other threads killed",
	"exit_mmap: the old address space dropped (to the task's rename)",
	"total, spec sent → exec done",
	"other threads at exec",
}

func reportSteps(vs []variant, steps map[string]map[string][]time.Duration) {
	fmt.Print("\n| step (tracepoints) |")
	for _, v := range vs {
		fmt.Printf(" %s p50 / p90 (n %d) |", v.name, len(steps[v.name][stepNames[0]]))
	}
	fmt.Print("\n|---|")
	for range vs {
		fmt.Print("---|")
	}
	fmt.Println()
	for _, st := range stepNames {
		fmt.Printf("| %s |", st)
		for _, v := range vs {
			xs := steps[v.name][st]
			switch {
			case len(xs) == 0:
				fmt.Print(" — |")
			case st == stepNames[6]:
				fmt.Printf(" %d / %d |", q(xs, .5), q(xs, .9))
			default:
				fmt.Printf(" %.3f / %.3f ms |", ms(q(xs, .5)), ms(q(xs, .9)))
			}
		}
		fmt.Println()
	}
}
