package initproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// tree is a detached copy of a mount, or of a tree of mounts, made by open_tree.
type tree struct {
	fd  int
	dir bool
}

// cloneMounts copies the source of every mount, with its attributes applied, ready
// to be attached at its destination.
func cloneMounts(mounts []Mount) ([]tree, error) {
	trees := make([]tree, 0, len(mounts))
	for _, m := range mounts {
		t, err := cloneMount(m)
		if err != nil {
			closeTrees(trees)
			return nil, err
		}
		trees = append(trees, t)
	}
	return trees, nil
}

func cloneMount(m Mount) (tree, error) {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if m.Recursive {
		flags |= unix.AT_RECURSIVE
	}

	fd, err := unix.OpenTree(unix.AT_FDCWD, m.Source, flags)
	if errors.Is(err, unix.ENOENT) {
		return tree{}, fmt.Errorf("invalid source %s of the bind mount at %s: it does not exist on the host; create it or correct the source", m.Source, m.Destination)
	}
	if err != nil {
		return tree{}, fmt.Errorf("failed to bind %s at %s: %w", m.Source, m.Destination, kernelError(err))
	}

	var stat unix.Stat_t
	if err := unix.Fstat(fd, &stat); err != nil {
		unix.Close(fd)
		return tree{}, fmt.Errorf("failed to bind %s at %s: %w", m.Source, m.Destination, err)
	}

	if err := setMountAttributes(fd, m); err != nil {
		unix.Close(fd)
		return tree{}, err
	}
	return tree{fd: fd, dir: stat.Mode&unix.S_IFMT == unix.S_IFDIR}, nil
}

// setMountAttributes applies the propagation and the flags of m to every mount of
// the copy, and a plain "ro" to its top mount only, as runc does for "rbind,ro".
func setMountAttributes(fd int, m Mount) error {
	flags := uint(unix.AT_EMPTY_PATH)
	if m.Recursive {
		flags |= unix.AT_RECURSIVE
	}

	attr := unix.MountAttr{Attr_set: m.Attributes, Propagation: propagation(m.Propagation)}
	if m.RecursiveReadOnly {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(fd, "", flags, &attr); err != nil {
		return fmt.Errorf("failed to set the options of the bind of %s at %s: %w", m.Source, m.Destination, kernelError(err))
	}

	if !m.ReadOnly || m.RecursiveReadOnly {
		return nil
	}
	top := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &top); err != nil {
		return fmt.Errorf("failed to make the bind of %s at %s read-only: %w", m.Source, m.Destination, err)
	}
	return nil
}

func propagation(value string) uint64 {
	switch value {
	case PropagationShared:
		return unix.MS_SHARED
	case PropagationSlave:
		return unix.MS_SLAVE
	}
	return unix.MS_PRIVATE
}

func closeTrees(trees []tree) {
	for _, t := range trees {
		unix.Close(t.fd)
	}
}

// attach mounts t at the destination of m, creating the destination first when the
// host has none.
func (v *hostView) attach(t tree, m Mount) error {
	dest, err := v.mountPoint(m.Destination, t.dir)
	if err != nil {
		return err
	}

	if err := unix.MoveMount(t.fd, "", unix.AT_FDCWD, dest, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("failed to bind %s at %s: %w", m.Source, m.Destination, err)
	}
	return nil
}

// mountPoint resolves dest in the container's view and returns a path to mount on.
// What is missing is created inside an overlay of the deepest folder that exists, so
// nothing is ever created on the host.
func (v *hostView) mountPoint(dest string, dir bool) (string, error) {
	existing, missing, err := resolvePath("/", dest)
	if err != nil {
		return "", err
	}

	if len(missing) == 0 {
		return existing, checkKind(existing, dest, dir)
	}

	if !v.writable[existing] && !v.onOverlay(existing) {
		if err := v.overlay(existing); err != nil {
			return "", fmt.Errorf("failed to create the mount point %s: %w", dest, err)
		}
	}
	return v.create(existing, missing, dir)
}

// create makes the missing components below parent, directories except for the last
// one when a file is to be mounted there.
func (v *hostView) create(parent string, missing []string, dir bool) (string, error) {
	path := parent
	for i, name := range missing {
		path = filepath.Join(path, name)
		if i < len(missing)-1 || dir {
			if err := os.Mkdir(path, 0o755); err != nil {
				return "", fmt.Errorf("failed to create the mount point %s: %w", path, err)
			}
			v.writable[path] = true
			continue
		}

		file, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return "", fmt.Errorf("failed to create the mount point %s: %w", path, err)
		}
		file.Close()
	}
	return path, nil
}

// checkKind rejects a directory bound on a file and a file bound on a directory,
// which the kernel rejects with a less helpful error.
func checkKind(path, dest string, dir bool) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("failed to read the mount point %s: %w", dest, err)
	}

	if info.IsDir() == dir {
		return nil
	}
	if dir {
		return fmt.Errorf("cannot bind a directory at %s: it is a file on the host; choose another mount path", dest)
	}
	return fmt.Errorf("cannot bind a file at %s: it is a directory on the host; choose another mount path", dest)
}

// kernelError explains ENOSYS from the mount API, which kernels before Linux 5.12 lack
// in part.
func kernelError(err error) error {
	if errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("%w: Reaper mounts with open_tree, move_mount and mount_setattr, which need Linux 5.12 or later", err)
	}
	return err
}
