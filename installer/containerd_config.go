// Package installer holds the host side of the Reaper node installer: it reads containerd's
// configuration, writes a Reaper-owned drop-in that registers the runtime handlers, and
// installs the Reaper binaries. It imports nothing from Kubernetes.
package installer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// ErrConfigNotFound is returned when the containerd root config file does not exist.
var ErrConfigNotFound = errors.New("containerd config not found")

// ErrUnsupportedVersion is returned when a config schema version has no known CRI plugin
// path.
var ErrUnsupportedVersion = errors.New("unsupported containerd config version")

// ErrInvalidConfig is wrapped by the error of a containerd config file that is not
// valid TOML.
var ErrInvalidConfig = errors.New("invalid containerd config")

// invalidConfigError is a TOML error that also matches ErrInvalidConfig.
type invalidConfigError struct{ err error }

func (e invalidConfigError) Error() string   { return e.err.Error() }
func (e invalidConfigError) Unwrap() []error { return []error{e.err, ErrInvalidConfig} }

// ContainerdConfig is the part of a containerd root config file that the installer reads.
type ContainerdConfig struct {
	// Path is the file the values were read from.
	Path string
	// Version is the config schema version, the top-level `version` key. A file without
	// the key is version 1, as containerd reads it.
	Version int64
	// Imports are the top-level `imports` entries as written, possibly relative or globs.
	Imports []string
	// Address is containerd's socket as the file sets it, or empty for the default.
	Address string
	// HostRoot is the folder that shows the host's / when Path lies below it, or empty
	// for /. The absolute paths in the file are paths on the host.
	HostRoot string
	// DropInDir is the folder, in the installer's view, that the distribution reads
	// drop-ins from whatever the file imports, such as k0s's containerd.d, or empty.
	DropInDir string
}

// hostPath returns the host's name of path, a path below HostRoot.
func (c *ContainerdConfig) hostPath(path string) string {
	if c.HostRoot == "" || c.HostRoot == "/" {
		return path
	}
	return "/" + strings.TrimPrefix(strings.TrimPrefix(path, filepath.Clean(c.HostRoot)), "/")
}

// rootConfigKeys are the only keys the installer decodes; every other key is ignored.
type rootConfigKeys struct {
	Version any      `toml:"version"`
	Imports []string `toml:"imports"`
	GRPC    struct {
		Address string `toml:"address"`
	} `toml:"grpc"`
}

// ReadContainerdConfig parses the containerd root config at path and returns its schema version
// and imports. It returns an error wrapping ErrConfigNotFound when the file does not exist, and
// an error naming the line and column when the file is not valid TOML. It does not check
// whether the version is supported; RuntimePluginID does.
func ReadContainerdConfig(path string) (*ContainerdConfig, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read containerd config %s: %w", path, ErrConfigNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read containerd config %s: %w", path, err)
	}
	return parseContainerdConfig(path, data)
}

func parseContainerdConfig(path string, data []byte) (*ContainerdConfig, error) {
	var keys rootConfigKeys
	if err := toml.Unmarshal(data, &keys); err != nil {
		return nil, decodeError(path, err)
	}

	version, err := schemaVersion(path, keys.Version)
	if err != nil {
		return nil, err
	}
	return &ContainerdConfig{Path: path, Version: version, Imports: keys.Imports, Address: keys.GRPC.Address}, nil
}

// decodeError adds the file, line and column to a go-toml error.
func decodeError(path string, err error) error {
	var derr *toml.DecodeError
	if errors.As(err, &derr) {
		line, column := derr.Position()
		return fmt.Errorf("parse containerd config %s: line %d, column %d: %w; fix the TOML syntax at that position",
			path, line, column, invalidConfigError{err})
	}
	return fmt.Errorf("parse containerd config %s: %w", path, invalidConfigError{err})
}

// schemaVersion returns the decoded `version` value, or 1 when the key is missing.
func schemaVersion(path string, value any) (int64, error) {
	if value == nil {
		return 1, nil
	}
	version, ok := value.(int64)
	if !ok {
		return 0, fmt.Errorf("containerd config %s: version is %v (%T), expected an integer: %w",
			path, value, value, ErrUnsupportedVersion)
	}
	return version, nil
}

// RuntimePluginID returns the ID of the CRI plugin whose `containerd.runtimes` table holds the
// runtime handlers in a config of the given schema version.
func RuntimePluginID(version int64) (string, error) {
	switch version {
	case 1:
		return "cri", nil
	case 2:
		return "io.containerd.grpc.v1.cri", nil
	case 3, 4:
		return "io.containerd.cri.v1.runtime", nil
	default:
		return "", fmt.Errorf("version %d: %w; supported versions are 1 to 4 "+
			"(a file without a version key is version 1)", version, ErrUnsupportedVersion)
	}
}
