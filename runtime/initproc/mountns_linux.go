package initproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// enterMountNamespace gives the calling thread, and so the workload it execs, the
// mount namespace that config names. The thread must be locked, and this must run
// before the uid changes.
func enterMountNamespace(config *InitConfig) error {
	switch config.MountNamespace {
	case "":
		return nil
	case NewNamespace:
		return newMountNamespace(config)
	}
	return joinNamespace(config.MountNamespace, unix.CLONE_NEWNS)
}

// newMountNamespace creates a namespace that is a slave of the host's, so mounts the
// host makes later appear inside and nothing mounted inside reaches the host, and
// builds the container's view in it: protection, volumes, masks.
func newMountNamespace(config *InitConfig) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("failed to create a mount namespace: %w", err)
	}

	// Clone the volumes while their mounts are still peers of the host's: the clone
	// of a shared mount joins its peer group, which a bidirectional volume needs.
	trees, err := cloneMounts(config.Mounts)
	if err != nil {
		return err
	}
	defer closeTrees(trees)

	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("failed to make the mount namespace a slave of the host's: %w", err)
	}

	view := newHostView(config.ScratchDir)
	if err := view.protect(config.Protection); err != nil {
		return err
	}

	for i, m := range config.Mounts {
		if err := view.attach(trees[i], m); err != nil {
			return err
		}
	}

	if p := config.Protection; p != nil {
		if err := view.mask(p.MaskedPaths); err != nil {
			return err
		}
		if err := view.freezeOverlays(); err != nil {
			return err
		}
	}
	return view.close()
}

// joinNamespace enters the namespace at path, such as /proc/PID/ns/mnt of a
// container's main process, as an exec into that container does.
func joinNamespace(path string, nstype int) error {
	ns, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("failed to open the namespace %s: %w", path, err)
	}
	defer ns.Close()

	// setns into a mount namespace fails while the thread shares its filesystem
	// attributes with the other threads of the Go runtime.
	if nstype == unix.CLONE_NEWNS {
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return fmt.Errorf("failed to unshare the filesystem attributes: %w", err)
		}
	}

	if err := unix.Setns(int(ns.Fd()), nstype); err != nil {
		return fmt.Errorf("failed to join the namespace %s: %w", path, err)
	}
	return nil
}

// enterNetworkNamespace joins the network namespace at path, such as the pod's, or
// creates one with only the loopback interface, up.
func enterNetworkNamespace(path string) error {
	switch path {
	case "":
		return nil
	case NewNamespace:
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("failed to create a network namespace: %w", err)
		}
		return loopbackUp()
	}
	return joinNamespace(path, unix.CLONE_NEWNET)
}

// writeNetworkSysctls writes the net.* sysctls of the pod in the network namespace the
// process has joined.
func writeNetworkSysctls(sysctls map[string]string) error {
	for key, value := range sysctls {
		path := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
		if !strings.HasPrefix(key, "net.") || strings.Contains(key, "/") || !strings.HasPrefix(path, "/proc/sys/net/") {
			return fmt.Errorf("invalid sysctl %q: only net.* sysctls apply, in the pod's network namespace", key)
		}
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("failed to set sysctl %s=%s in the pod's network namespace: %w", key, value, err)
		}
	}
	return nil
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("failed to open a socket to bring the loopback interface up: %w", err)
	}
	defer unix.Close(fd)

	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("failed to read the flags of the loopback interface: %w", err)
	}

	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("failed to bring the loopback interface up: %w", err)
	}
	return nil
}
