package sandbox

// The instance's view of the machine, built by a stub in its own mount
// namespace (see isolate.go). Everything here runs in the stub, as root,
// on its locked OS thread.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// stage is where a stub builds the new root: a tmpfs mounted over /tmp in
// the stub's own mount namespace (the host's /tmp is untouched).
const stage = "/tmp"

const (
	roAttrs = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	rwAttrs = unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
)

// hostTmp is the host's /tmp, opened before the stub mounts anything over
// it: a function whose code lives under /tmp (a test's temporary
// directory, say) is found through it. -1 until openHostTmp.
var hostTmp = -1

func openHostTmp() error {
	fd, err := unix.Open("/tmp", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /tmp: %w", err)
	}
	hostTmp = fd
	return nil
}

// hostPath is where a host path p is found in the stub: under the host's
// /tmp (which the stub covered) through hostTmp.
func hostPath(p string) (dirfd int, rel string) {
	if rest, ok := strings.CutPrefix(p, "/tmp/"); ok && hostTmp >= 0 {
		return hostTmp, rest
	}
	return unix.AT_FDCWD, p
}

// devNodes are the devices an instance gets, bound from the host's.
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// privateMounts stops mounts made in this namespace from propagating to
// the host's (a copied namespace starts as a peer of the one it came from).
func privateMounts() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	return nil
}

// prePlace builds the part of the view every function shares, before the
// stub is ready: a tmpfs root at stage with the system directories
// read-only, /dev, /proc (this PID namespace's) and /tmp.
func prePlace() error {
	if err := privateMounts(); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", stage, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=1m"); err != nil {
		return fmt.Errorf("mount the new root: %w", err)
	}
	for _, d := range systemDirs {
		fi, err := os.Lstat(d)
		switch {
		case errors.Is(err, os.ErrNotExist):
			continue
		case err != nil:
			return err
		case fi.Mode()&os.ModeSymlink != 0: // merged /usr: /bin -> usr/bin
			target, err := os.Readlink(d)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, stage+d); err != nil {
				return err
			}
		case fi.IsDir():
			if err := bindAt(d, stage+d, roAttrs, -1); err != nil {
				return err
			}
		}
	}
	if err := makeDev(); err != nil {
		return err
	}
	if err := os.Mkdir(stage+"/proc", 0o555); err != nil {
		return err
	}
	if err := unix.Mount("proc", stage+"/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if err := os.Mkdir(stage+"/tmp", 0o1777); err != nil {
		return err
	}
	if err := mountTmp(stage+"/tmp", DefaultTmpMB); err != nil {
		return err
	}
	// /dev/shm (POSIX shared memory, Python's multiprocessing locks) is
	// part of /tmp and of its size limit.
	if err := os.Mkdir(stage+"/tmp/.shm", 0o1777); err != nil {
		return err
	}
	if err := os.Chmod(stage+"/tmp/.shm", 0o1777); err != nil { // the umask cleared the sticky bit
		return err
	}
	if err := unix.Mount(stage+"/tmp/.shm", stage+"/dev/shm", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind /dev/shm: %w", err)
	}
	return nil
}

func mountTmp(dir string, mb int) error {
	opts := "mode=1777,size=" + strconv.Itoa(mb) + "m"
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount %s: %w", dir, err)
	}
	return nil
}

func makeDev() error {
	dev := stage + "/dev"
	if err := os.Mkdir(dev, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=64k"); err != nil {
		return fmt.Errorf("mount /dev: %w", err)
	}
	for _, n := range devNodes {
		f, err := os.OpenFile(dev+"/"+n, os.O_CREATE|os.O_WRONLY, 0o666)
		if err != nil {
			return err
		}
		f.Close()
		if err := unix.Mount("/dev/"+n, dev+"/"+n, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind /dev/%s: %w", n, err)
		}
	}
	for name, target := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, dev+"/"+name); err != nil {
			return err
		}
	}
	return os.Mkdir(dev+"/shm", 0o1777)
}

// tree is a detached copy of a host directory (or file) with mount
// attributes set, ready to be attached in the view.
type tree struct {
	fd       int
	dir      bool
	src, dst string // dst: where it goes in the view; "" for src's own path
}

// cloneTree copies the mount tree at host path src with attrs applied to
// all of it; through the idmapping of the user namespace userns when it is
// not -1.
func cloneTree(src string, attrs uint64, userns int) (tree, error) {
	dirfd, rel := hostPath(src)
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, rel, &st, 0); err != nil {
		return tree{}, fmt.Errorf("show %s: %w", src, err)
	}
	fd, err := unix.OpenTree(dirfd, rel, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return tree{}, fmt.Errorf("show %s: open_tree: %w", src, err)
	}
	attr := &unix.MountAttr{Attr_set: attrs}
	if userns >= 0 {
		attr.Attr_set |= unix.MOUNT_ATTR_IDMAP
		attr.Userns_fd = uint64(userns)
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		unix.Close(fd)
		return tree{}, fmt.Errorf("show %s: mount_setattr: %w", src, err)
	}
	return tree{fd: fd, dir: st.Mode&unix.S_IFMT == unix.S_IFDIR, src: src}, nil
}

// attach mounts t at dst, creating the mount point, and closes t.
func (t tree) attach(dst string) error {
	defer unix.Close(t.fd)
	if err := makeMountpoint(dst, t.dir); err != nil {
		return fmt.Errorf("show %s: %w", t.src, err)
	}
	if err := unix.MoveMount(t.fd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("show %s: move_mount: %w", t.src, err)
	}
	return nil
}

// bindAt shows host path src at dst.
func bindAt(src, dst string, attrs uint64, userns int) error {
	t, err := cloneTree(src, attrs, userns)
	if err != nil {
		return err
	}
	return t.attach(dst)
}

// ownTrees clones the function's code (read-only unless codeRW) and its
// writable paths, idmapped as idmap says (see enterView).
func ownTrees(iso *Isolation, idmap []int, codeRW bool) ([]tree, error) {
	attrs := uint64(roAttrs)
	if codeRW {
		attrs = rwAttrs
	}
	var ts []tree
	fail := func(err error) ([]tree, error) {
		for _, t := range ts {
			unix.Close(t.fd)
		}
		return nil, err
	}
	for i, p := range iso.ownPaths() {
		if i > 0 {
			attrs = rwAttrs
		}
		t, err := cloneTree(p, attrs, idmap[i])
		if err != nil {
			return fail(err)
		}
		if p == iso.Home && i == len(idmap)-1 {
			t.dst = buildHome
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// makeMountpoint creates dst (and its parents) unless it exists.
func makeMountpoint(dst string, dir bool) error {
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if dir {
		return os.Mkdir(dst, 0o755)
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o444)
	if err != nil {
		return err
	}
	return f.Close()
}

// hide covers path, if it exists under root, with an empty read-only
// directory or an empty file.
func hide(root, path string) error {
	p := root + path
	fi, err := os.Lstat(p)
	if err != nil {
		return nil // not in the view
	}
	if fi.IsDir() {
		if err := unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0,size=4k"); err != nil {
			return fmt.Errorf("hide %s: %w", path, err)
		}
		return nil
	}
	if err := unix.Mount("/dev/null", p, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("hide %s: %w", path, err)
	}
	return nil
}

// enterView finishes the pre-placed view for req and makes it the root:
// the function's code read-only, its writable paths, the /tmp size, Stoke's
// files hidden. idmap[i] is the user namespace mapping the owner of
// iso.Code (i 0) or iso.Writable[i-1] to the function's user, or -1.
func enterView(iso *Isolation, idmap []int) error {
	if mb := iso.tmpMB(); mb != DefaultTmpMB {
		if err := unix.Mount("", stage+"/tmp", "", unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV, "size="+strconv.Itoa(mb)+"m"); err != nil {
			return fmt.Errorf("size /tmp: %w", err)
		}
	}
	ts, err := ownTrees(iso, idmap, false)
	if err != nil {
		return err
	}
	for i, t := range ts {
		if err := t.attach(stage + t.src); err != nil {
			for _, t := range ts[i+1:] {
				unix.Close(t.fd)
			}
			return err
		}
	}
	for _, h := range iso.Hide {
		if err := hide(stage, h); err != nil {
			return err
		}
	}
	// The new root is moved over / and chrooted into, as runc does without
	// pivot_root: pivot_root must then detach the host's tree, and that
	// umount waits for an RCU grace period (5.6 ms measured here, on the
	// request path). In a mount namespace of its own, with no capability
	// left (leaving a chroot needs CAP_SYS_CHROOT) and no fd open outside it
	// (all are close-on-exec), the function cannot get out, and
	// /proc/self/mountinfo lists only the mounts under its root. Moved to /
	// (not chrooted where it was staged), its paths read the same from the
	// host: /proc/<pid>/exe and cwd name the function's own files.
	if err := unix.Chdir(stage); err != nil {
		return err
	}
	if err := unix.Mount(stage, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move the new root to /: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return unix.Chdir("/")
}

// enterBuildView is the view of a build command: the host's whole tree
// read-only but for the function's code (writable) and writable paths,
// with Stoke's files hidden and a private /tmp, /dev/shm and /proc.
func enterBuildView(iso *Isolation, idmap []int) error {
	if err := privateMounts(); err != nil {
		return err
	}
	// Cloned first: /tmp is covered below, and the code may live there.
	ts, err := ownTrees(iso, idmap, true)
	if err != nil {
		return err
	}
	defer func() {
		for _, t := range ts {
			if t.fd >= 0 {
				unix.Close(t.fd)
			}
		}
	}()
	// Read-only, not nodev: /dev/null must stay usable.
	ro := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID}
	if err := unix.MountSetattr(unix.AT_FDCWD, "/", unix.AT_RECURSIVE, ro); err != nil {
		return fmt.Errorf("make the host read-only: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if err := mountTmp("/tmp", iso.tmpMB()); err != nil {
		return err
	}
	if _, err := os.Stat("/dev/shm"); err == nil {
		if err := mountTmp("/dev/shm", 64); err != nil {
			return err
		}
	}
	for i := range ts {
		t := ts[i]
		ts[i].fd = -1 // attach closes it
		dst := t.src
		if t.dst != "" {
			dst = t.dst
		}
		if err := t.attach(dst); err != nil {
			return err
		}
	}
	for _, h := range iso.Hide {
		if err := hide("", h); err != nil {
			return err
		}
	}
	return nil
}
