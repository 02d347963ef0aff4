package installer

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// DefaultLockFile is the host file whose flock serialises installers on a node.
const DefaultLockFile = "/run/reaper/installer.lock"

// Lock takes an exclusive flock on the lock file at path, a path on the host, and returns
// the function that releases it. It waits, with one log line, while another installer
// holds the lock, as when a rolling update overlaps a retry.
func (o Options) Lock(path string, log *slog.Logger) (func(), error) {
	file := o.onHost(path)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return nil, fmt.Errorf("create the folder of the lock file %s: %w", file, err)
	}

	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the lock file %s: %w", file, err)
	}

	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		log.Info("waiting for another reaper-installer to release its lock", "lockFile", file)
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", file, err)
	}
	return func() { f.Close() }, nil
}
