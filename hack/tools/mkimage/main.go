// Command mkimage writes a single-layer image holding one static binary as a docker-archive
// tarball, the format that `ctr images import` and `docker load` read.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"reaper.dev/reaper/hack/tools/internal/imagebuild"
)

type options struct {
	binary    string
	imagePath string
	ref       string
	output    string
	arch      string
	user      string
}

func main() {
	var opts options
	flag.StringVar(&opts.binary, "binary", "", "static binary to put into the image (required)")
	flag.StringVar(&opts.imagePath, "path", "", "absolute path of the binary inside the image; it is also the entrypoint (required)")
	flag.StringVar(&opts.ref, "name", "", "image reference, such as localhost/reaper/pause:3.10 (required)")
	flag.StringVar(&opts.output, "output", "", "tarball to write (required)")
	flag.StringVar(&opts.arch, "arch", runtime.GOARCH, "GOARCH the binary was built for")
	flag.StringVar(&opts.user, "user", "", "user the entrypoint runs as, such as 65535:65535 (default: the runtime's, root)")
	flag.Parse()

	if err := run(opts); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(1)
	}
}

func run(opts options) error {
	if opts.binary == "" || opts.ref == "" || opts.output == "" || !path.IsAbs(opts.imagePath) {
		return fmt.Errorf("-binary, -name, -output and an absolute -path are required; see -help")
	}
	tag, err := name.NewTag(opts.ref)
	if err != nil {
		return fmt.Errorf("parse image name %q: %w", opts.ref, err)
	}

	layer, err := binaryLayer(opts.binary, opts.imagePath)
	if err != nil {
		return err
	}
	img, err := buildImage(layer, opts)
	if err != nil {
		return fmt.Errorf("build image %s: %w", tag, err)
	}
	return writeTarball(opts.output, tag, img)
}

// binaryLayer returns a layer whose only entry is the binary at imagePath, owned by root with
// mode 0755.
func binaryLayer(binary, imagePath string) (v1.Layer, error) {
	content, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	header := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     path.Clean(imagePath)[1:],
		Mode:     0o755,
		Size:     int64(len(content)),
		ModTime:  imagebuild.Epoch,
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(header); err != nil {
		return nil, fmt.Errorf("write layer header for %s: %w", imagePath, err)
	}
	if _, err := tw.Write(content); err != nil {
		return nil, fmt.Errorf("write layer content for %s: %w", imagePath, err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer: %w", err)
	}

	layer, err := imagebuild.LayerFromTar(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("create layer from %s: %w", binary, err)
	}
	return layer, nil
}

// buildImage sets the platform, entrypoint and user in the config and appends the layer.
func buildImage(layer v1.Layer, opts options) (v1.Image, error) {
	config := imagebuild.ConfigFile(opts.arch, v1.Config{
		Entrypoint: []string{opts.imagePath},
		Env:        []string{imagebuild.DefaultPathEnv},
		User:       opts.user,
		WorkingDir: "/",
	})
	img, err := mutate.ConfigFile(empty.Image, config)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	return mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: imagebuild.History("mkimage: add " + opts.imagePath),
	})
}

// writeTarball writes the tarball beside output and renames it, so an interrupted run never
// leaves a partial tarball under the final name.
func writeTarball(output string, tag name.Tag, img v1.Image) error {
	if err := os.MkdirAll(filepath.Dir(output), 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	tmp := output + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s to %s: %w", tag, tmp, err)
	}
	if err := os.Rename(tmp, output); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, output, err)
	}
	return nil
}
