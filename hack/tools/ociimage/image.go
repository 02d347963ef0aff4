package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"reaper.dev/reaper/hack/tools/internal/imagebuild"
)

const (
	binPath    = "/usr/local/bin"
	entrypoint = binPath + "/reaper-controller"
	// nonroot is the user of distroless's nonroot images, which the Dockerfile's final stage
	// uses. The agent's pod overrides it with runAsUser 0.
	nonroot = "65532:65532"
	// containerdNameAnnotation names the image that `ctr images import` creates.
	containerdNameAnnotation = "io.containerd.image.name"
)

type options struct {
	binDir   string
	binaries []string
	ref      string
	output   string
	arch     string
	version  string
}

// run builds the image and writes it as an OCI archive.
func run(opts options) error {
	if opts.ref == "" || opts.output == "" {
		return errors.New("-name and -output are required; see -help")
	}
	imageName, err := parseFullName(opts.ref)
	if err != nil {
		return err
	}

	layer, err := binariesLayer(opts.binDir, opts.binaries)
	if err != nil {
		return err
	}
	img, err := buildImage(layer, opts)
	if err != nil {
		return fmt.Errorf("build image %s: %w", opts.ref, err)
	}
	return writeArchive(opts.output, imageName, img)
}

// parseFullName returns the name that the kubelet and containerd give to ref: an image
// without a registry is on docker.io, and one without a path is under library/.
func parseFullName(ref string) (string, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", fmt.Errorf("invalid image name %q: %w", ref, err)
	}
	registry := tag.RegistryStr()
	if registry == name.DefaultRegistry {
		registry = "docker.io"
	}
	return registry + "/" + tag.RepositoryStr() + ":" + tag.TagStr(), nil
}

// binariesLayer returns a layer with the folders of /usr/local/bin, the binaries in it with
// mode 0755, and /etc/passwd and /etc/group entries for root and nonroot. Every entry is owned
// by root.
func binariesLayer(binDir string, binaries []string) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)

	for _, dir := range []string{"etc", "tmp", "usr", "usr/local", "usr/local/bin"} {
		mode := int64(0o755)
		if dir == "tmp" {
			mode = 0o1777
		}
		if err := writeHeader(tw, &tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: mode}); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
		"etc/group":  "root:x:0:\nnonroot:x:65532:\n",
	}
	for _, file := range []string{"etc/group", "etc/passwd"} {
		if err := writeFile(tw, file, 0o644, []byte(files[file])); err != nil {
			return nil, err
		}
	}
	for _, binary := range binaries {
		if err := addBinary(tw, binDir, binary); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer: %w", err)
	}

	layer, err := imagebuild.LayerFromTar(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("create layer: %w", err)
	}
	return layer, nil
}

// addBinary writes binDir/binary into the layer under /usr/local/bin.
func addBinary(tw *tar.Writer, binDir, binary string) error {
	if binary == "" || path.Base(binary) != binary {
		return fmt.Errorf("invalid binary name %q: give a file name in -bin-dir", binary)
	}
	source := filepath.Join(binDir, binary)
	info, err := os.Stat(source)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("binary %s not found: run make build first", source)
	}
	if err != nil {
		return fmt.Errorf("stat binary %s: %w", source, err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("binary %s is a %s, expected a regular file", source, info.Mode().Type())
	}
	content, err := os.ReadFile(source)
	if err != nil {
		return fmt.Errorf("read binary %s: %w", source, err)
	}
	return writeFile(tw, path.Join(binPath, binary)[1:], 0o755, content)
}

func writeFile(tw *tar.Writer, name string, mode int64, content []byte) error {
	header := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(content))}
	if err := writeHeader(tw, header); err != nil {
		return err
	}
	if _, err := tw.Write(content); err != nil {
		return fmt.Errorf("write %s into the layer: %w", name, err)
	}
	return nil
}

// writeHeader writes header with the fixed time and root ownership of every entry.
func writeHeader(tw *tar.Writer, header *tar.Header) error {
	header.ModTime = imagebuild.Epoch
	header.Format = tar.FormatPAX
	if err := tw.WriteHeader(header); err != nil {
		return fmt.Errorf("write layer header for %s: %w", header.Name, err)
	}
	return nil
}

// buildImage builds an image with OCI media types. It sets the platform, entrypoint, user and labels in the config and appends layer.
func buildImage(layer v1.Layer, opts options) (v1.Image, error) {
	labels := map[string]string{
		"org.opencontainers.image.title":       "reaper",
		"org.opencontainers.image.description": "Reaper's controller, node agent and runtime binaries",
	}
	if opts.version != "" {
		labels["org.opencontainers.image.version"] = opts.version
	}
	config := imagebuild.ConfigFile(opts.arch, v1.Config{
		Entrypoint: []string{entrypoint},
		Env:        []string{imagebuild.DefaultPathEnv},
		User:       nonroot,
		WorkingDir: "/",
		Labels:     labels,
	})
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.ConfigFile(base, config)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	return mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   imagebuild.History("ociimage: add the binaries to " + binPath),
	})
}
