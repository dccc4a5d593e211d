package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// poolFloorApps is how many copies of the app the pool floor fronts: as
// many as the Lambda-model function's max_instances.
const poolFloorApps = 50

// appPool is poolFloorApps copies of examples/hello, each on a port of its
// own, for the pool floor (floorproxy -mode pool): Lambda's
// one-request-per-instance model with nothing but the forwarding on the
// path.
type appPool struct {
	addrs []string
	apps  []*exec.Cmd
	cg    string // the cpu cgroup parent, "" when the apps run where stokebench does
}

func (p *appPool) pids() []int {
	out := make([]int, len(p.apps))
	for i, a := range p.apps {
		out[i] = a.Process.Pid
	}
	return out
}

// startAppPool starts the copies. batch: each runs under SCHED_BATCH
// (`chrt -b 0`, as Stoke's instances do once the sandbox sets it). cg: each
// runs in a v1 cpu cgroup of its own with the quota of the Lambda-model
// function's 1769 MB (one CPU), as Stoke's instances do, at
// stoke/floorpool-<pid>/<i>: the same depth below stoke/ as an instance's
// stoke/<stoke pid>/<id>, so the kernel's group scheduling walks as many
// levels (Stoke's sweep skips names that are not pids). Only the cpu
// controller: not memory or pids, which Stoke's instances are in too.
func (e *env) startAppPool(cg, batch bool) (*appPool, error) {
	p := &appPool{}
	if cg {
		base := "/sys/fs/cgroup/cpu/stoke"
		if _, err := os.Stat("/sys/fs/cgroup/cpu"); err != nil {
			return nil, fmt.Errorf("no cgroup v1 cpu hierarchy: %w", err)
		}
		if err := os.MkdirAll(base, 0o755); err != nil {
			return nil, err
		}
		p.cg = filepath.Join(base, "floorpool-"+strconv.Itoa(os.Getpid())+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
		if err := os.Mkdir(p.cg, 0o755); err != nil {
			return nil, err
		}
	}
	for i := 0; i < poolFloorApps; i++ {
		port := freePort()
		name, args := e.hello, []string(nil)
		if batch {
			name, args = "chrt", []string{"-b", "0", e.hello}
		}
		a, err := e.start(filepath.Join(e.dir, fmt.Sprintf("poolapp-%d.log", port)), []string{fmt.Sprintf("PORT=%d", port), "GREETING=hi"}, name, args...)
		if err != nil {
			p.stop(e)
			return nil, err
		}
		p.apps = append(p.apps, a)
		p.addrs = append(p.addrs, fmt.Sprintf("127.0.0.1:%d", port))
		if cg {
			dir := filepath.Join(p.cg, strconv.Itoa(i))
			err := os.Mkdir(dir, 0o755)
			for _, kv := range [][2]string{{"cpu.cfs_period_us", "100000"}, {"cpu.cfs_quota_us", "100000"}, {"cgroup.procs", strconv.Itoa(a.Process.Pid)}} {
				if err == nil {
					err = os.WriteFile(filepath.Join(dir, kv[0]), []byte(kv[1]), 0)
				}
			}
			if err != nil {
				p.stop(e)
				return nil, fmt.Errorf("pool app %d's cgroup: %w", i, err)
			}
		}
	}
	return p, nil
}

// stop stops the copies and removes their cgroups.
func (p *appPool) stop(e *env) {
	for _, a := range p.apps {
		e.stop(a, 0)
	}
	if p.cg == "" {
		return
	}
	ents, _ := os.ReadDir(p.cg)
	for _, d := range ents {
		if d.IsDir() {
			rmdirWait(filepath.Join(p.cg, d.Name()))
		}
	}
	rmdirWait(p.cg)
}

// rmdirWait removes an empty cgroup, retrying while its last tasks exit.
func rmdirWait(dir string) {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		err := os.Remove(dir)
		if err == nil || os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "LEAK: cgroup %s: %v\n", dir, err)
			return
		}
	}
}

// startPoolFloor starts floorproxy -mode pool in front of p's apps and
// returns it and its address, once it listens.
func (e *env) startPoolFloor(ctx context.Context, p *appPool, tag string) (*exec.Cmd, string, error) {
	for _, a := range p.addrs {
		if err := waitListen(ctx, a); err != nil {
			return nil, "", err
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort())
	c, err := e.start(filepath.Join(e.dir, "floor-pool-"+tag+".log"), nil, e.floor, "-mode", "pool", "-listen", addr, "-target", strings.Join(p.addrs, ","))
	if err != nil {
		return nil, "", err
	}
	if err := waitListen(ctx, addr); err != nil {
		e.stop(c, 0)
		return nil, "", err
	}
	return c, addr, nil
}
