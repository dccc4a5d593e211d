package sandbox_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/cgroups/v3/cgroup1"

	"github.com/stokehq/stoke/internal/sandbox"
)

// BenchmarkPlainExec is the baseline for BenchmarkStart: the bare
// exec.Cmd.Start of the same child, in its own process group.
func BenchmarkPlainExec(b *testing.B) {
	exe := self(b)
	for b.Loop() {
		cmd := exec.Command(exe)
		cmd.Env = []string{childEnv + "=exit"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = cmd.Wait()
		b.StartTimer()
	}
}

// BenchmarkStart times Manager.Start (cgroup creation and limits, pipes,
// exec, joining the cgroup) of a child that exits at once. The exit and the
// cgroup removal are not timed.
func BenchmarkStart(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts sandbox.Options
	}{{"cgroup", sandbox.Options{}}, {"nocgroup", sandbox.Options{DisableCgroups: true}}} {
		b.Run(tc.name, func(b *testing.B) {
			m := newManager(b, tc.opts, &syncBuffer{})
			exe, i := self(b), 0
			for b.Loop() {
				i++
				p, err := m.Start(context.Background(), sandbox.Spec{
					ID: fmt.Sprint("b", i), Args: []string{exe}, MemoryMB: 128,
					Env: []string{childEnv + "=exit"}, Output: func(string, string) {},
				})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				<-p.Done()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkMemoryRead compares the single-file read behind MaxMemoryMB with
// the library's Stat of the same cgroup.
func BenchmarkMemoryRead(b *testing.B) {
	m := newManager(b, sandbox.Options{}, nil)
	if !m.Enforced() {
		b.Skip("cgroups not usable here")
	}
	p := start(b, m, "mem", 128, nil, childEnv+"=sleep")
	b.Cleanup(func() { _ = p.Stop(context.Background(), 0) })
	b.Run("MaxMemoryMB", func(b *testing.B) {
		for b.Loop() {
			if p.MaxMemoryMB() <= 0 {
				b.Fatal("no memory use")
			}
		}
	})
	b.Run("cgroup1.Stat", func(b *testing.B) {
		dir := sandbox.CgroupDirs(m, "mem")[0]
		if !strings.HasPrefix(dir, "/sys/fs/cgroup/memory/") {
			b.Skip("not cgroup v1")
		}
		cg, err := cgroup1.Load(cgroup1.StaticPath(filepath.Join("/", strings.TrimPrefix(dir, "/sys/fs/cgroup/memory/"))))
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			st, err := cg.Stat(cgroup1.IgnoreNotExist)
			if err != nil || st.Memory.Usage.Max == 0 {
				b.Fatal(err)
			}
		}
	})
}
