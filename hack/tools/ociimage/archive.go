package main

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// writeArchive writes img as an OCI image layout, tars the layout into output and names the
// image fullName in the index. It writes beside output and renames, so an interrupted run
// never leaves a partial archive under the final name.
func writeArchive(output, fullName string, img v1.Image) error {
	if err := os.MkdirAll(filepath.Dir(output), 0o755); err != nil {
		return fmt.Errorf("create output folder: %w", err)
	}
	layoutDir, err := os.MkdirTemp(filepath.Dir(output), ".oci-layout-")
	if err != nil {
		return fmt.Errorf("create layout folder: %w", err)
	}
	defer os.RemoveAll(layoutDir)

	index := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	dir, err := layout.Write(layoutDir, index)
	if err != nil {
		return fmt.Errorf("write OCI layout to %s: %w", layoutDir, err)
	}
	annotations := map[string]string{
		containerdNameAnnotation:            fullName,
		"org.opencontainers.image.ref.name": fullName,
	}
	if err := dir.AppendImage(img, layout.WithAnnotations(annotations)); err != nil {
		return fmt.Errorf("add image %s to the OCI layout: %w", fullName, err)
	}

	tmp := output + ".tmp"
	if err := tarFolder(layoutDir, tmp); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, output); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, output, err)
	}
	return nil
}

// tarFolder writes the tree under dir into the tar file output, in lexical order, with fixed
// times and root ownership, so the archive depends only on the image.
func tarFolder(dir, output string) error {
	file, err := os.Create(output)
	if err != nil {
		return fmt.Errorf("create %s: %w", output, err)
	}
	defer file.Close()

	tw := tar.NewWriter(file)
	err = filepath.WalkDir(dir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		return addToTar(tw, path, filepath.ToSlash(rel), entry)
	})
	if err != nil {
		return fmt.Errorf("archive OCI layout %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("close %s: %w", output, err)
	}
	return file.Close()
}

func addToTar(tw *tar.Writer, path, name string, entry fs.DirEntry) error {
	if entry.IsDir() {
		return writeHeader(tw, &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755})
	}
	info, err := entry.Info()
	if err != nil {
		return err
	}
	if err := writeHeader(tw, &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: info.Size()}); err != nil {
		return err
	}
	source, err := os.Open(path)
	if err != nil {
		return err
	}
	defer source.Close()
	if _, err := io.Copy(tw, source); err != nil {
		return fmt.Errorf("write %s into the archive: %w", name, err)
	}
	return nil
}
