package sandbox

// A stub's exec is mostly the teardown of its old address space: execve
// unmaps every page the Go process has mapped (exit_mmap, in the stub's
// own execve, before the app runs and before Stoke learns the exec
// worked). A stub of Stoke's binary has ~25 MB of its executable mapped by
// the time it is ready (package initialisation reads much of its text and
// read-only data), and unmapping them took 2.2–2.6 ms of its 3.0–3.7 ms
// from spec to exec here (docs/BENCHMARKS.md, "The stub's exec"; its other
// threads, killed first, took ~0.1 ms). So a stub drops
// those pages from its page tables before it says it is ready, off the
// request path. The pages it needs again before the exec are mapped back
// by minor faults from the page cache; decoding a spec needs the most
// (encoding/json), so a stub decodes a sample one before it is ready.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// trimForExec is a stub's last step before it says it is ready.
func trimForExec() {
	sample, err := json.Marshal(sampleRequest)
	_ = dropFilePages()
	if err == nil {
		_, _ = decodeRequest(sample, 0)
	}
}

// sampleRequest has every field of a request set, so decoding it maps
// back what decoding any request needs.
var sampleRequest = stubRequest{
	Path: "/app", Args: []string{"app"}, Env: []string{"K=v"}, Dir: "/code",
	Iso: &Isolation{UID: 1, GID: 1, Code: "/code", Writable: []string{"/w"}, Hide: []string{"/h"},
		TmpMB: 1, NoNetwork: true, Build: true, Home: "/home"},
	IDMap: []int{-1}, NetNS: -1,
}

// pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
const (
	pmPresent  = 1 << 63
	pmFilePage = 1 << 61 // a page of the page cache (or shared anonymous memory)
)

// dropFilePages unmaps, from this process's page tables, the pages of its
// read-only file mappings (executable text, read-only data, shared
// libraries) that are page-cache pages. It is what reclaim may do to any
// process at any time: the pages stay in the page cache and are mapped
// again on the next access, with the same contents. Writable mappings are
// left alone, and so are pages a read-only mapping holds privately (a
// library's relocated RELRO, copied on write before it was made
// read-only): discarding those would lose data. Best effort: an error
// leaves the rest mapped, which is only slower.
func dropFilePages() error {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return err
	}
	pagemap, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return err
	}
	defer pagemap.Close()
	page := uint64(os.Getpagesize())
	for line := range bytes.Lines(maps) {
		// start-end perms offset dev inode [path]
		f := bytes.Fields(line)
		if len(f) < 6 || len(f[1]) < 4 || f[1][1] == 'w' || (f[1][0] != 'r' && f[1][2] != 'x') ||
			string(f[4]) == "0" || f[5][0] == '[' {
			continue
		}
		lo, hi, _ := bytes.Cut(f[0], []byte("-"))
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		if err := dropRange(pagemap, start, (end-start)/page, page); err != nil {
			return err
		}
	}
	return nil
}

// dropRange drops the page-cache pages among the n pages from start, one
// madvise per run of them.
func dropRange(pagemap *os.File, start, n, page uint64) error {
	ents := make([]byte, n*8)
	if _, err := pagemap.ReadAt(ents, int64(start/page*8)); err != nil {
		return err
	}
	run := uint64(0) // pages in the current run, which ends before page i
	for i := uint64(0); i <= n; i++ {
		if i < n {
			e := binary.LittleEndian.Uint64(ents[i*8:])
			if e&pmPresent != 0 && e&pmFilePage != 0 {
				run++
				continue
			}
		}
		if run > 0 {
			addr := start + (i-run)*page
			if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(addr), uintptr(run*page), unix.MADV_DONTNEED); errno != 0 {
				return errno
			}
			run = 0
		}
	}
	return nil
}
