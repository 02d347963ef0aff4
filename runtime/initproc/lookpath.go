package initproc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultPath is the search path for args[0] when the spec's environment has no PATH.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// LookPath resolves the executable name against the PATH of env (not the caller's).
// A name containing a slash is used as it is, relative to cwd.
func LookPath(name string, env []string, cwd string) (string, error) {
	if name == "" {
		return "", errors.New("invalid process args: args[0] is empty")
	}

	if strings.Contains(name, "/") {
		path := name
		if !filepath.IsAbs(path) {
			path = filepath.Join(cwd, path)
		}
		if err := checkExecutable(path); err != nil {
			return "", fmt.Errorf("exec %q: %w", name, err)
		}
		return name, nil
	}

	for _, dir := range filepath.SplitList(pathFromEnv(env)) {
		if dir == "" {
			dir = "."
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(cwd, dir)
		}
		path := filepath.Join(dir, name)
		if checkExecutable(path) == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in $PATH (%s)", name, pathFromEnv(env))
}

func pathFromEnv(env []string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if value, ok := strings.CutPrefix(env[i], "PATH="); ok {
			return value
		}
	}
	return DefaultPath
}

func checkExecutable(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errors.New("no such file on the host")
		}
		return err
	}

	if info.IsDir() {
		return errors.New("is a directory")
	}

	if info.Mode()&0o111 == 0 {
		return errors.New("permission denied: the file is not executable")
	}
	return nil
}
