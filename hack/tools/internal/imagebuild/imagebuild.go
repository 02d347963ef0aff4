// Package imagebuild contains the image parts that the image tools in hack/tools build the same
// way. These are the fixed time that makes their digests reproducible, the image config, its
// history entries, and layers from a tar stream in memory.
package imagebuild

import (
	"bytes"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Epoch is the time of every file, history entry and image config, so that the same input
// always gives the same image digest.
var Epoch = time.Unix(0, 0).UTC()

// DefaultPathEnv is the PATH of an image that sets no environment of its own.
const DefaultPathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ConfigFile returns the config of a linux image for the GOARCH arch, created at Epoch, with
// process as its runtime config and no layers yet.
func ConfigFile(arch string, process v1.Config) *v1.ConfigFile {
	return &v1.ConfigFile{
		Created:      v1.Time{Time: Epoch},
		OS:           "linux",
		Architecture: arch,
		RootFS:       v1.RootFS{Type: "layers"},
		Config:       process,
	}
}

// History returns a history entry created at Epoch by createdBy.
func History(createdBy string) v1.History {
	return v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: createdBy}
}

// LayerFromTar returns an uncompressed layer whose tar stream is content. The layer reads
// content on each open, so the caller must not change it afterwards.
func LayerFromTar(content []byte) (v1.Layer, error) {
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(content)), nil
	})
}
