package installer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// writeFileAtomic replaces path with data by writing a temporary file in the same directory and
// renaming it, so a reader such as containerd reads either the old or the new file, never a
// partial one.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	return replaceFile(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, nil)
}

// replaceFile writes a temporary file beside path with write, sets mode, syncs it, runs verify on
// the temporary path when verify is not nil, and renames it over path. The temporary file is
// removed on every error.
func replaceFile(path string, mode fs.FileMode, write func(io.Writer) error, verify func(tmp string) error) (err error) {
	dir := filepath.Dir(path)
	removeStaleTemporaries(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()

	if err := write(tmp); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	// CreateTemp uses mode 0600 and the umask would narrow a mode given at creation.
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("set mode %o on %s: %w", mode, tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if verify != nil {
		if err := verify(tmp.Name()); err != nil {
			return err
		}
	}
	crashPoint(path, "written")
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp.Name(), path, err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	crashPoint(path, "renamed")
	return nil
}

// removeStaleTemporaries removes the temporary files of path that an installer killed
// before its rename left behind. The host lock keeps another installer from writing one
// at the same time.
func removeStaleTemporaries(path string) {
	stale, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+globEscape(filepath.Base(path))+".tmp-*"))
	for _, tmp := range stale {
		_ = os.Remove(tmp)
	}
}

func globEscape(name string) string {
	var b strings.Builder
	for _, r := range name {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// crashAt names the step at which the installer exits at once, as if killed, in the form
// FILE:written (before the rename), FILE:renamed, or SHIM:linked for the shim link before
// its rename. Only the crash tests set it.
var crashAt = os.Getenv("REAPER_INSTALLER_TEST_CRASH_AT")

// crashExitCode is the exit code of a test crash, the one of a SIGKILL.
const crashExitCode = 137

func crashPoint(path, step string) {
	if crashAt != "" && crashAt == filepath.Base(path)+":"+step {
		os.Exit(crashExitCode)
	}
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// fileSHA256 returns the hex SHA-256 digest of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()

	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
