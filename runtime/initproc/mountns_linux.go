package initproc

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// enterMountNamespace gives the calling thread, and so the workload it execs, the mount
// namespace that config names. A new namespace is a slave of the host's: mounts the
// host makes later appear inside, and nothing mounted inside reaches the host. The
// thread must be locked, and it must run before the uid changes.
func enterMountNamespace(config *InitConfig) error {
	switch {
	case config.JoinMountNamespace != "":
		return joinMountNamespace(config.JoinMountNamespace)
	case config.NewMountNamespace:
		return newMountNamespace()
	}
	return nil
}

func newMountNamespace() error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("failed to create a mount namespace: %w", err)
	}

	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("failed to make the mount namespace a slave of the host's: %w", err)
	}
	return nil
}

// joinMountNamespace enters the namespace at path, such as /proc/PID/ns/mnt of a
// container's main process, as an exec into that container does.
func joinMountNamespace(path string) error {
	ns, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("failed to open the mount namespace %s: %w", path, err)
	}
	defer ns.Close()

	// setns into a mount namespace fails while the thread shares its filesystem
	// attributes with the other threads of the Go runtime.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("failed to unshare the filesystem attributes: %w", err)
	}
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("failed to join the mount namespace %s: %w", path, err)
	}
	return nil
}
