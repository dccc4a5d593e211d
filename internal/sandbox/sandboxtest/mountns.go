package sandboxtest

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// ownNSEnv marks the re-executed test binary, already in its own mount
// namespace.
const ownNSEnv = "STOKE_TEST_OWN_MOUNT_NS"

// inOwnNS is set once this binary runs in a mount namespace of its own.
var inOwnNS bool

// InOwnMountNamespace re-executes this test binary (same pid, same
// arguments) in a mount namespace of its own, when it runs as root, so the
// mounts CheckNoLeaks compares are this binary's alone: `go test ./...`
// runs several packages' binaries at once, and one's tmpfs, or a mount the
// kernel makes on another's behalf (the automount of /sys/kernel/tracing),
// would otherwise look like a leak of whichever binary looked then.
//
// The new namespace's mounts are made shared again, with peer groups of
// their own, as systemd makes the host's: a process this binary starts in
// yet another mount namespace (a stub) that forgets to make its mounts
// private propagates them here, where CheckNoLeaks sees them.
//
// Call it in TestMain after sandbox.MaybeRunStub and any app mode, right
// before m.Run: everything before it runs twice.
func InOwnMountNamespace() {
	if inOwnNS {
		return
	}
	if os.Getenv(ownNSEnv) != "" {
		inOwnNS = true
		os.Unsetenv(ownNSEnv) // not for the processes the tests start
		return
	}
	if os.Geteuid() != 0 {
		return // no mounts to leak
	}
	if err := reexecInOwnNS(); err != nil {
		fmt.Fprintf(os.Stderr, "sandboxtest: a mount namespace of this test binary's own: %v\n", err)
		os.Exit(2)
	}
}

func reexecInOwnNS() error {
	// The namespace is the calling thread's until execve, which makes this
	// thread the whole process.
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("make / shared: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	err = syscall.Exec(exe, os.Args, append(os.Environ(), ownNSEnv+"=1"))
	return fmt.Errorf("exec %s: %w", exe, err)
}
