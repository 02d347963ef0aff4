package initproc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxSymlinks is the number of symlinks a path may go through, as the kernel allows.
const maxSymlinks = 40

// resolvePath follows path inside root the way the kernel would, symlink by symlink,
// and splits it into the deepest directory or file that exists, as a clean absolute
// path inside root, and the components missing below it. A symlink never leads out
// of root: ".." stops at root, and an absolute target starts again at root.
func resolvePath(root, path string) (string, []string, error) {
	current := "/"
	pending := splitPath(path)

	for links := 0; len(pending) > 0; {
		name := pending[0]
		pending = pending[1:]
		if name == ".." {
			current = filepath.Dir(current)
			continue
		}

		next := filepath.Join(current, name)
		info, err := os.Lstat(filepath.Join(root, next))
		if errors.Is(err, fs.ErrNotExist) {
			return missingBelow(path, current, append([]string{name}, pending...))
		}
		if err != nil {
			return "", nil, fmt.Errorf("failed to resolve %q: %w", path, err)
		}

		if info.Mode()&fs.ModeSymlink == 0 {
			if len(pending) > 0 && !info.IsDir() {
				return "", nil, fmt.Errorf("invalid mount destination %q: %s is not a directory on the host", path, next)
			}
			current = next
			continue
		}

		links++
		if links > maxSymlinks {
			return "", nil, fmt.Errorf("invalid mount destination %q: more than %d symlinks on the way", path, maxSymlinks)
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", nil, fmt.Errorf("failed to resolve %q: %w", path, err)
		}
		if filepath.IsAbs(target) {
			current = "/"
		}
		pending = append(splitPath(target), pending...)
	}
	return current, nil, nil
}

// missingBelow returns the components that do not exist below existing. A ".." among
// them would climb out of a directory that does not exist yet.
func missingBelow(path, existing string, missing []string) (string, []string, error) {
	for _, name := range missing {
		if name == ".." {
			return "", nil, fmt.Errorf("invalid mount destination %q: \"..\" follows %s, which does not exist on the host", path, filepath.Join(existing, missing[0]))
		}
	}
	return existing, missing, nil
}

// splitPath returns the components of path without empty and "." ones.
func splitPath(path string) []string {
	var names []string
	for _, name := range strings.Split(path, "/") {
		if name != "" && name != "." {
			names = append(names, name)
		}
	}
	return names
}
