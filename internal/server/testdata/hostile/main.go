// Command hostile is a function that attacks Stoke and its neighbours, as
// a hostile tenant would (internal/server's TestHostileFunction). Each
// GET /hostile/attack/NAME answers "refused: why" or "SUCCEEDED: what it got".
// Targets (paths, pids, addresses) come as query parameters: the test
// tells it exactly where to aim, which is stronger than guessing.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "sleep" {
		time.Sleep(time.Hour)
		return
	}
	http.HandleFunc("/hostile/attack/{name}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, attack(r.PathValue("name"), r.URL.Query().Get))
	})
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	if err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func refused(err error) string { return "refused: " + err.Error() }

func result(got []byte, err error) string {
	if err != nil {
		return refused(err)
	}
	if len(got) == 0 {
		return "refused: empty"
	}
	return "SUCCEEDED: " + strings.ReplaceAll(string(got[:min(len(got), 200)]), "\n", " ")
}

func attack(name string, arg func(string) string) string {
	switch name {
	case "whoami":
		return fmt.Sprintf("uid %d gid %d", os.Getuid(), os.Getgid())
	case "read": // the config, data_dir's database, another function's files
		return result(os.ReadFile(arg("path")))
	case "list": // another function's directory, data_dir
		ents, err := os.ReadDir(arg("path"))
		if err == nil && len(ents) == 0 {
			return "refused: empty"
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return result([]byte(strings.Join(names, ",")), err)
	case "environ": // Stoke's or a neighbour's environment, or its own whole
		b, err := os.ReadFile("/proc/" + arg("pid") + "/environ")
		if arg("pid") == "self" && err == nil {
			return strings.ReplaceAll(string(b), "\x00", " ")
		}
		return result(b, err)
	case "signal": // Stoke or a neighbour: signal 0 tests the reach
		pid, _ := strconv.Atoi(arg("pid"))
		if err := syscall.Kill(pid, 0); err != nil {
			return refused(err)
		}
		return "SUCCEEDED: could signal pid " + arg("pid")
	case "cgroup": // raise its own memory limit, lift its CPU quota
		var errs []error
		for _, f := range []string{"memory/memory.limit_in_bytes", "cpu/cpu.cfs_quota_us", "memory.max", "cpu.max"} {
			for _, root := range []string{"/sys/fs/cgroup/", "/sys/fs/cgroup/memory/stoke/", "/sys/fs/cgroup/unified/"} {
				if err := os.WriteFile(root+f, []byte("-1"), 0); err == nil {
					return "SUCCEEDED: wrote " + root + f
				} else {
					errs = append(errs, err)
				}
			}
		}
		if err := syscall.Mount("cgroup", "/tmp", "cgroup", 0, "memory"); err == nil {
			return "SUCCEEDED: mounted the memory cgroup hierarchy"
		} else {
			errs = append(errs, err)
		}
		return refused(errors.Join(errs...))
	case "runtime-api": // poll a neighbour's Runtime API for its events
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://" + arg("addr") + "/2018-06-01/runtime/invocation/next")
		if err != nil {
			return refused(err)
		}
		defer resp.Body.Close()
		return fmt.Sprintf("SUCCEEDED: %s", resp.Status)
	case "http-get": // another function's app, straight to its port
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://" + arg("addr") + "/")
		if err != nil {
			return refused(err)
		}
		defer resp.Body.Close()
		b := make([]byte, 100)
		n, _ := resp.Body.Read(b)
		return "SUCCEEDED: " + string(b[:n])
	case "unix-sockets": // the python templates' control sockets (names with prefix)
		b, err := os.ReadFile("/proc/net/unix")
		if err != nil {
			return refused(err)
		}
		for line := range strings.Lines(string(b)) {
			f := strings.Fields(line)
			if len(f) < 8 || !strings.HasPrefix(f[7], arg("prefix")) {
				continue
			}
			c, err := net.Dial("unix", f[7])
			if err == nil {
				c.Close()
				return "SUCCEEDED: connected to " + f[7]
			}
		}
		return "refused: no abstract socket to connect to"
	case "fork-bomb": // as many processes as it can; the pids limit stops it
		var kids []*exec.Cmd
		var err error
		for len(kids) < 5000 {
			c := exec.Command("/proc/self/exe", "sleep")
			if err = c.Start(); err != nil {
				break
			}
			kids = append(kids, c)
		}
		for _, c := range kids {
			c.Process.Kill()
			c.Wait()
		}
		if err == nil {
			return fmt.Sprintf("SUCCEEDED: %d processes", len(kids))
		}
		return fmt.Sprintf("refused after %d processes: %v", len(kids), err)
	case "fill-tmp": // past ephemeral_storage
		f, err := os.Create("/tmp/fill")
		if err != nil {
			return refused(err)
		}
		defer os.Remove("/tmp/fill")
		defer f.Close()
		buf := bytes.Repeat([]byte{7}, 1<<20)
		n := 0
		for ; n < 20<<10; n++ {
			if _, err = f.Write(buf); err != nil {
				return fmt.Sprintf("refused after %d MB: %v", n, err)
			}
		}
		return fmt.Sprintf("SUCCEEDED: wrote %d MB", n)
	case "ptrace": // another process of its own, or anyone's
		pid, _ := strconv.Atoi(arg("pid"))
		if err := syscall.PtraceAttach(pid); err != nil {
			return refused(err)
		}
		return "SUCCEEDED: attached to " + arg("pid")
	case "write-code":
		return result(nil, os.WriteFile(arg("path"), []byte("owned"), 0o644))
	}
	return "unknown attack " + name
}
