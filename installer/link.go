package installer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DefaultLinkDir is a folder on containerd's PATH in the units that distributions ship.
const DefaultLinkDir = "/usr/local/bin"

// shimLink is the symbolic link that makes the shim resolvable by name. containerd
// starts a pod's shim through runtime_path, but after a restart it resolves the shim of
// the pod's other containers by name on its PATH, and deletes the containers it cannot
// resolve.
type shimLink struct {
	path   string // LinkDir/containerd-shim-reaper-v2
	target string // InstallDir/containerd-shim-reaper-v2
}

func newShimLink(opts Options) *shimLink {
	if opts.LinkDir == "" {
		return nil
	}
	return &shimLink{
		path:   opts.onHost(filepath.Join(opts.LinkDir, ShimBinary)),
		target: filepath.Join(opts.InstallDir, ShimBinary),
	}
}

// current returns where the link points, or "" when nothing is there. It fails when a
// file that is not a symbolic link is there: a shim installed some other way.
func (l *shimLink) current() (string, error) {
	info, err := os.Lstat(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("stat %s: %w", l.path, err)
	}
	if info.Mode()&fs.ModeSymlink == 0 {
		return "", fmt.Errorf("%s exists and is not a link to %s; remove it or pass another --link-dir", l.path, l.target)
	}
	return os.Readlink(l.path)
}

// create points the link at the installed shim, unless it does already.
func (l *shimLink) create() (bool, error) {
	current, err := l.current()
	if err != nil {
		return false, err
	}
	if current == l.target {
		return false, nil
	}

	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return false, fmt.Errorf("create %s: %w", filepath.Dir(l.path), err)
	}

	// A new link renamed over the old one, so containerd never finds the name missing.
	tmp := l.path + ".reaper-tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(l.target, tmp); err != nil {
		return false, fmt.Errorf("link %s to %s: %w", tmp, l.target, err)
	}
	crashPoint(l.path, "linked")
	if err := os.Rename(tmp, l.path); err != nil {
		_ = os.Remove(tmp)
		return false, fmt.Errorf("rename %s to %s: %w", tmp, l.path, err)
	}
	return true, nil
}

// remove deletes the link if it points at the installed shim, and leaves anything else,
// a file that is not a link included.
func (l *shimLink) remove() (bool, error) {
	info, err := os.Lstat(l.path)
	if err != nil || info.Mode()&fs.ModeSymlink == 0 {
		return false, nil //nolint:nilerr // A missing link or a file of another kind is not ours to remove.
	}

	current, err := os.Readlink(l.path)
	if err != nil {
		return false, fmt.Errorf("read link %s: %w", l.path, err)
	}
	if current != l.target {
		return false, nil
	}
	return removeFile(l.path)
}
