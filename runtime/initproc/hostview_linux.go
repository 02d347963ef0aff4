package initproc

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// oldRootName is the folder of the new root that holds the host root for a moment
// after pivot_root, until it is detached.
const oldRootName = ".reaper-old-root"

// hostView builds the container's view of the host in its new mount namespace.
type hostView struct {
	// scratch is the mount point of the private tmpfs that holds the overlays' writes.
	scratch string
	mounted bool
	layers  int
	// writable holds the folders of the view where a mount point can be created
	// without touching the host: overlays and the folders made inside them.
	writable map[string]bool
	// overlays are the mount points of the overlays made for mount points, and
	// overlayDevices the device numbers of every overlay made, whose folders take new
	// entries without touching the host.
	overlays       []string
	overlayDevices map[uint64]bool
}

func newHostView(scratch string) *hostView {
	return &hostView{scratch: scratch, writable: map[string]bool{}, overlayDevices: map[uint64]bool{}}
}

// protect applies the protected mode's root: read-only in place, or an overlay.
func (v *hostView) protect(p *Protection) error {
	if p == nil {
		return nil
	}

	switch p.Root {
	case RootReadOnly:
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(unix.AT_FDCWD, "/", unix.AT_RECURSIVE, &attr); err != nil {
			return fmt.Errorf("failed to make the host root read-only: %w", kernelError(err))
		}
		return nil
	case RootOverlay:
		return v.overlayRoot(true)
	}
	return fmt.Errorf("invalid protected root %q: use %q or %q", p.Root, RootOverlay, RootReadOnly)
}

// overlay puts dir behind an overlay so that mount points can be created in it. The
// folders and files in dir are bound back over the overlay, so writes to them still
// reach the host. Only what Reaper creates lives in the overlay.
func (v *hostView) overlay(dir string) error {
	if dir == "/" {
		return v.overlayRoot(false)
	}

	upper, work, err := v.layer(dir)
	if err != nil {
		return err
	}

	entries, err := cloneEntries(dir)
	if err != nil {
		return err
	}
	defer closeNamed(entries)

	if err := v.mountOverlay(dir, upper, work, dir); err != nil {
		return err
	}
	if err := attachNamed(entries, "/"); err != nil {
		return err
	}
	v.writable[dir] = true
	v.overlays = append(v.overlays, dir)
	return nil
}

// overlayRoot puts the host root behind an overlay. A mount on top of "/" does not
// change where the process's paths start, so the new root is built in the scratch
// folder and becomes the root by pivot_root. In the protected mode the host's other
// mounts come back read-only, and writes to the root's own files go to the overlay.
// Otherwise every folder and file of the root is bound back writable.
func (v *hostView) overlayRoot(protected bool) error {
	upper, work, err := v.layer("/")
	if err != nil {
		return err
	}

	entries, err := v.rootEntries(protected)
	if err != nil {
		return err
	}
	defer closeNamed(entries)

	newRoot := filepath.Join(v.scratch, "root")
	if err := os.Mkdir(newRoot, 0o755); err != nil {
		return fmt.Errorf("failed to create the overlay root: %w", err)
	}
	if err := v.mountOverlay("/", upper, work, newRoot); err != nil {
		return err
	}
	if err := attachNamed(entries, newRoot); err != nil {
		return err
	}

	if err := pivotRoot(newRoot); err != nil {
		return err
	}
	v.writable["/"] = true
	if !protected {
		v.overlays = append(v.overlays, "/")
	}

	// The scratch tmpfs came back inside a read-only copy, but later overlays write to it.
	attr := unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(unix.AT_FDCWD, v.scratch, 0, &attr); err != nil {
		return fmt.Errorf("failed to make the scratch folder %s writable: %w", v.scratch, err)
	}
	return nil
}

func (v *hostView) rootEntries(protected bool) ([]namedTree, error) {
	if !protected {
		return cloneEntries("/")
	}

	entries, err := cloneChildMounts()
	if err != nil {
		return nil, err
	}

	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	for _, e := range entries {
		if err := unix.MountSetattr(e.fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
			closeNamed(entries)
			return nil, fmt.Errorf("failed to make the host mount %s read-only: %w", e.path, err)
		}
	}
	return entries, nil
}

func pivotRoot(newRoot string) error {
	oldRoot := filepath.Join(newRoot, oldRootName)
	if err := os.Mkdir(oldRoot, 0o700); err != nil {
		return fmt.Errorf("failed to prepare the overlay root: %w", err)
	}

	if err := unix.PivotRoot(newRoot, oldRoot); err != nil {
		return fmt.Errorf("failed to switch to the overlay root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("failed to enter the overlay root: %w", err)
	}

	old := "/" + oldRootName
	if err := unix.Unmount(old, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("failed to detach the host root from the overlay root: %w", err)
	}
	if err := os.Remove(old); err != nil {
		return fmt.Errorf("failed to clean up the overlay root: %w", err)
	}
	return nil
}

// layer returns a new upper and work folder on the scratch tmpfs, mounting the tmpfs
// first. The upper folder takes the owner and mode of lower, because the overlay's
// top folder shows them.
func (v *hostView) layer(lower string) (string, string, error) {
	if err := v.mountScratch(); err != nil {
		return "", "", err
	}

	v.layers++
	upper := filepath.Join(v.scratch, "upper"+strconv.Itoa(v.layers))
	work := filepath.Join(v.scratch, "work"+strconv.Itoa(v.layers))
	for _, dir := range []string{upper, work} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return "", "", fmt.Errorf("failed to create the overlay folder %s: %w", dir, err)
		}
	}

	var stat unix.Stat_t
	if err := unix.Stat(lower, &stat); err != nil {
		return "", "", fmt.Errorf("failed to read %s: %w", lower, err)
	}
	if err := os.Chown(upper, int(stat.Uid), int(stat.Gid)); err != nil {
		return "", "", fmt.Errorf("failed to set the owner of %s: %w", upper, err)
	}
	if err := unix.Chmod(upper, stat.Mode&0o7777); err != nil {
		return "", "", fmt.Errorf("failed to set the mode of %s: %w", upper, err)
	}
	return upper, work, nil
}

func (v *hostView) mountScratch() error {
	if v.mounted {
		return nil
	}
	if v.scratch == "" {
		return errors.New("no scratch folder for the overlay: set ScratchDir in the init config")
	}

	if err := unix.Mount("tmpfs", v.scratch, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700"); err != nil {
		return fmt.Errorf("failed to mount the scratch tmpfs on %s: %w", v.scratch, err)
	}
	v.mounted = true
	return nil
}

func (v *hostView) mountOverlay(lower, upper, work, target string) error {
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", escapeOverlay(lower), escapeOverlay(upper), escapeOverlay(work))
	if err := unix.Mount("overlay", target, "overlay", 0, data); err != nil {
		return fmt.Errorf("failed to mount an overlay of %s: %w", lower, err)
	}

	var stat unix.Stat_t
	if err := unix.Stat(target, &stat); err != nil {
		return fmt.Errorf("failed to read the overlay of %s: %w", lower, err)
	}
	v.overlayDevices[stat.Dev] = true
	return nil
}

// onOverlay reports whether the folder at path belongs to an overlay made earlier.
func (v *hostView) onOverlay(path string) bool {
	var stat unix.Stat_t
	return unix.Stat(path, &stat) == nil && v.overlayDevices[stat.Dev]
}

// escapeOverlay escapes the characters that separate overlay options and layers.
func escapeOverlay(path string) string {
	return strings.NewReplacer(`\`, `\\`, `,`, `\,`, `:`, `\:`).Replace(path)
}

// mask shows the paths that match patterns empty and read-only: an empty file over
// a file, an empty tmpfs over a folder. Paths the host does not have are skipped.
func (v *hostView) mask(patterns []string) error {
	for _, pattern := range patterns {
		paths, err := filepath.Glob(pattern)
		if err != nil {
			return fmt.Errorf("invalid masked path %q: %w", pattern, err)
		}

		for _, path := range paths {
			if err := v.maskPath(path); err != nil {
				return err
			}
		}
	}
	return nil
}

func (v *hostView) maskPath(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("failed to mask %s: %w", path, err)
	}

	const flags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if info.IsDir() {
		if err := unix.Mount("tmpfs", path, "tmpfs", flags, "size=4k,mode=0700"); err != nil {
			return fmt.Errorf("failed to mask %s: %w", path, err)
		}
		return nil
	}

	empty, err := v.emptyFile()
	if err != nil {
		return err
	}
	if err := unix.Mount(empty, path, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("failed to mask %s: %w", path, err)
	}
	if err := unix.Mount("", path, "", unix.MS_BIND|unix.MS_REMOUNT|flags, ""); err != nil {
		return fmt.Errorf("failed to make the mask of %s read-only: %w", path, err)
	}
	return nil
}

// emptyFile returns an empty, read-only file on the scratch tmpfs.
func (v *hostView) emptyFile() (string, error) {
	if err := v.mountScratch(); err != nil {
		return "", err
	}

	path := filepath.Join(v.scratch, "empty")
	file, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o444)
	if err != nil {
		return "", fmt.Errorf("failed to create the file that masks paths: %w", err)
	}
	return path, file.Close()
}

// freezeOverlays makes the overlays made for mount points read-only, so that the
// host mounts they cover stay read-only in the protected mode.
func (v *hostView) freezeOverlays() error {
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	for _, dir := range v.overlays {
		if err := unix.MountSetattr(unix.AT_FDCWD, dir, 0, &attr); err != nil {
			return fmt.Errorf("failed to make the overlay on %s read-only: %w", dir, err)
		}
	}
	return nil
}

// close detaches the scratch tmpfs from the view; the overlays keep what they use.
func (v *hostView) close() error {
	if !v.mounted {
		return nil
	}
	if err := unix.Unmount(v.scratch, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("failed to detach the scratch tmpfs %s: %w", v.scratch, err)
	}
	return nil
}

// namedTree is a detached copy of the mounts at path.
type namedTree struct {
	path string
	fd   int
}

// cloneEntries copies every folder and file of dir with the mounts under it.
// Symlinks, devices and sockets stay visible through the overlay's lower layer.
func cloneEntries(dir string) ([]namedTree, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("failed to list %s: %w", dir, err)
	}

	var paths []string
	for _, entry := range entries {
		if entry.IsDir() || entry.Type().IsRegular() {
			paths = append(paths, filepath.Join(dir, entry.Name()))
		}
	}
	return cloneTrees(paths)
}

// cloneChildMounts copies every mount that sits directly on the root mount, with
// the mounts under it.
func cloneChildMounts() ([]namedTree, error) {
	points, err := childMountPoints("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return cloneTrees(points)
}

func cloneTrees(paths []string) ([]namedTree, error) {
	trees := make([]namedTree, 0, len(paths))
	for _, path := range paths {
		t, err := cloneTree(path)
		if err != nil {
			closeNamed(trees)
			return nil, err
		}
		trees = append(trees, t)
	}
	return trees, nil
}

func cloneTree(path string) (namedTree, error) {
	const flags = unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_RECURSIVE | unix.AT_SYMLINK_NOFOLLOW
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, flags)
	if err != nil {
		return namedTree{}, fmt.Errorf("failed to copy the host mounts at %s: %w", path, kernelError(err))
	}
	return namedTree{path: path, fd: fd}, nil
}

// attachNamed mounts every tree at its path below root.
func attachNamed(trees []namedTree, root string) error {
	for _, t := range trees {
		target := filepath.Join(root, t.path)
		if err := unix.MoveMount(t.fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("failed to attach the host mounts of %s again: %w", t.path, err)
		}
	}
	return nil
}

func closeNamed(trees []namedTree) {
	for _, t := range trees {
		unix.Close(t.fd)
	}
}

// childMountPoints returns the mount points of the mounts whose parent is the root
// mount, from a mountinfo file.
func childMountPoints(mountinfo string) ([]string, error) {
	file, err := os.Open(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("failed to read the mount table: %w", err)
	}
	defer file.Close()

	type mount struct{ id, parent, point string }
	var mounts []mount
	rootID := ""
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) < 5 {
			continue
		}
		m := mount{id: fields[0], parent: fields[1], point: unescapeMountInfo(fields[4])}
		if m.point == "/" {
			rootID = m.id
		}
		mounts = append(mounts, m)
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("failed to read the mount table: %w", err)
	}

	var points []string
	for _, m := range mounts {
		if m.parent == rootID && m.point != "/" {
			points = append(points, m.point)
		}
	}
	return points, nil
}

// unescapeMountInfo decodes the octal escapes (\040 for a space) of a mountinfo path.
func unescapeMountInfo(field string) string {
	if !strings.Contains(field, `\`) {
		return field
	}

	var b strings.Builder
	for i := 0; i < len(field); i++ {
		if field[i] == '\\' && i+3 < len(field) {
			if n, err := strconv.ParseUint(field[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(field[i])
	}
	return b.String()
}
