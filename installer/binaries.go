package installer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	// ShimBinary is the containerd shim that containerd starts for RuntimeType.
	ShimBinary = "containerd-shim-reaper-v2"
	// RuntimeBinary is Reaper's OCI runtime command line.
	RuntimeBinary = "reaper-runtime"
	// InitBinary is the helper the shim starts each container process through; the shim
	// looks for it beside itself.
	InitBinary = "reaper-init"
)

// Binaries are the files the installer copies from the source directory to the install directory.
var Binaries = []string{ShimBinary, RuntimeBinary, InitBinary}

// BinaryCopy is one binary to install.
type BinaryCopy struct {
	Source string
	Target string
	// SHA256 is the hex digest of Source when the copy was planned. The copy must match it.
	SHA256 string
}

// planBinaryCopy checks that source is a regular file and records its digest.
func planBinaryCopy(source, target string) (BinaryCopy, error) {
	info, err := os.Stat(source)
	if errors.Is(err, fs.ErrNotExist) {
		return BinaryCopy{}, fmt.Errorf("source binary %s not found: %w; build it with `make build` "+
			"or point the source directory at the directory that contains it", source, err)
	}
	if err != nil {
		return BinaryCopy{}, fmt.Errorf("stat source binary %s: %w", source, err)
	}
	if !info.Mode().IsRegular() {
		return BinaryCopy{}, fmt.Errorf("source binary %s is a %s, expected a regular file", source, info.Mode().Type())
	}

	sum, err := fileSHA256(source)
	if err != nil {
		return BinaryCopy{}, fmt.Errorf("hash source binary %s: %w", source, err)
	}
	return BinaryCopy{Source: source, Target: target, SHA256: sum}, nil
}

// upToDate reports whether Target already has the planned content.
func (b BinaryCopy) upToDate() bool {
	sum, err := fileSHA256(b.Target)
	return err == nil && sum == b.SHA256
}

// install copies Source to Target with mode 0755 through a temporary file, checks the copy's
// digest against the planned one, and renames it into place. It returns false when Target
// already had the planned content.
func (b BinaryCopy) install() (bool, error) {
	if b.upToDate() {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(b.Target), 0o755); err != nil {
		return false, fmt.Errorf("create install directory %s: %w", filepath.Dir(b.Target), err)
	}

	copySource := func(w io.Writer) error {
		src, err := os.Open(b.Source)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(w, src)
		return err
	}
	verify := func(tmp string) error {
		sum, err := fileSHA256(tmp)
		if err != nil {
			return fmt.Errorf("hash copy of %s: %w", b.Source, err)
		}
		if sum != b.SHA256 {
			return fmt.Errorf("copy of %s has sha256 %s, expected %s; the source changed during the install, run it again",
				b.Source, sum, b.SHA256)
		}
		return nil
	}
	if err := replaceFile(b.Target, 0o755, copySource, verify); err != nil {
		return false, fmt.Errorf("install %s to %s: %w", b.Source, b.Target, err)
	}
	return true, nil
}
