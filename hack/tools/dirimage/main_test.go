package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"reaper.dev/reaper/hack/tools/internal/imagebuild"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile applies the umask and ignores os.ModeSetuid, so set the mode explicitly.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// baseFolder creates a folder with a binary, a hard link to it, a setuid program and a symbolic
// link.
func baseFolder(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bin", "busybox"), "fake busybox", 0o755)
	writeFile(t, filepath.Join(dir, "usr", "bin", "nnp"), "fake setuid program", 0o755|os.ModeSetuid)
	if err := os.Symlink("busybox", filepath.Join(dir, "bin", "sh")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "bin", "busybox"), filepath.Join(dir, "bin", "ls")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// imagesByName reads the layout and returns its images keyed by their name annotation.
func imagesByName(t *testing.T, dir string) map[string]v1.Image {
	t.Helper()
	path, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	index, err := path.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]v1.Image{}
	for _, desc := range manifest.Manifests {
		img, err := path.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		images[desc.Annotations[refNameAnnotation]] = img
	}
	return images
}

func digestOf(t *testing.T, img v1.Image) string {
	t.Helper()
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return digest.String()
}

func TestRunAddsImageUnderEveryName(t *testing.T) {
	base := baseFolder(t)
	out := filepath.Join(t.TempDir(), "layout")
	names := []string{"registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9"}

	err := run(options{layoutDir: out, layers: []string{base}, names: names, cmd: []string{"sh"}, user: "1003:1004", workdir: "/", arch: "arm64"})
	if err != nil {
		t.Fatalf("run() error: %v", err)
	}

	images := imagesByName(t, out)
	if len(images) != 2 {
		t.Fatalf("layout holds %d names, want 2", len(images))
	}
	if digestOf(t, images[names[0]]) != digestOf(t, images[names[1]]) {
		t.Errorf("the two names of one image have different digests")
	}
	config, err := images[names[0]].ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if config.OS != "linux" || config.Architecture != "arm64" {
		t.Errorf("platform = %s/%s, want linux/arm64", config.OS, config.Architecture)
	}
	if !slices.Equal(config.Config.Cmd, []string{"sh"}) {
		t.Errorf("cmd = %q, want [sh]", config.Config.Cmd)
	}
	if config.Config.User != "1003:1004" {
		t.Errorf("user = %q, want 1003:1004", config.Config.User)
	}
	if len(config.Config.Env) != 1 || config.Config.Env[0][:5] != "PATH=" {
		t.Errorf("env = %q, want only the default PATH", config.Config.Env)
	}
}

func TestRunKeepsModesAndLinks(t *testing.T) {
	base := baseFolder(t)
	out := filepath.Join(t.TempDir(), "layout")
	if err := run(options{layoutDir: out, layers: []string{base}, names: []string{"example.com/a:1"}}); err != nil {
		t.Fatal(err)
	}

	layers, err := imagesByName(t, out)["example.com/a:1"].Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v; want exactly one", len(layers), err)
	}
	headers := layerHeaders(t, layers[0])

	nnp, ok := headers["usr/bin/nnp"]
	if !ok {
		t.Fatal("layer has no usr/bin/nnp")
	}
	if nnp.Mode&0o7777 != 0o4755 {
		t.Errorf("usr/bin/nnp mode = %o, want 4755", nnp.Mode&0o7777)
	}
	if nnp.Uid != 0 || nnp.Gid != 0 || !nnp.ModTime.Equal(imagebuild.Epoch) {
		t.Errorf("usr/bin/nnp owner %d:%d time %v, want 0:0 at the Unix epoch", nnp.Uid, nnp.Gid, nnp.ModTime)
	}
	sh, ok := headers["bin/sh"]
	if !ok {
		t.Fatal("layer has no bin/sh")
	}
	if sh.Typeflag != tar.TypeSymlink || sh.Linkname != "busybox" {
		t.Errorf("bin/sh type %c link %q, want a symbolic link to busybox", sh.Typeflag, sh.Linkname)
	}
	if dir, ok := headers["usr/bin/"]; !ok || dir.Typeflag != tar.TypeDir {
		t.Errorf("layer has no folder entry usr/bin/")
	}
	if busybox := headers["bin/busybox"]; busybox == nil || busybox.Typeflag != tar.TypeReg || busybox.Size == 0 {
		t.Errorf("bin/busybox is %+v, want the regular file with the content", busybox)
	}
	ls, ok := headers["bin/ls"]
	if !ok {
		t.Fatal("layer has no bin/ls")
	}
	if ls.Typeflag != tar.TypeLink || ls.Linkname != "bin/busybox" || ls.Size != 0 {
		t.Errorf("bin/ls type %c link %q size %d, want a hard link to bin/busybox", ls.Typeflag, ls.Linkname, ls.Size)
	}
}

func TestRunSharesLayersAndSeparatesImages(t *testing.T) {
	base := baseFolder(t)
	first, second := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(first, "test-image-1"), "", 0o644)
	writeFile(t, filepath.Join(second, "test-image-2"), "", 0o644)
	out := filepath.Join(t.TempDir(), "layout")

	for name, extra := range map[string]string{"example.com/test-image-1:latest": first, "example.com/test-image-2:latest": second} {
		if err := run(options{layoutDir: out, layers: []string{base, extra}, names: []string{name}}); err != nil {
			t.Fatal(err)
		}
	}

	images := imagesByName(t, out)
	firstImage, secondImage := images["example.com/test-image-1:latest"], images["example.com/test-image-2:latest"]
	if digestOf(t, firstImage) == digestOf(t, secondImage) {
		t.Errorf("images with different files have the same digest")
	}
	firstBase := baseLayerDigest(t, firstImage)
	secondBase := baseLayerDigest(t, secondImage)
	if firstBase != secondBase {
		t.Errorf("base layers differ (%s and %s), want one shared layer", firstBase, secondBase)
	}
}

func TestRunReplacesImageOfSameName(t *testing.T) {
	out := filepath.Join(t.TempDir(), "layout")
	for _, user := range []string{"1", "2"} {
		if err := run(options{layoutDir: out, layers: []string{baseFolder(t)}, names: []string{"example.com/a:1"}, user: user}); err != nil {
			t.Fatal(err)
		}
	}

	images := imagesByName(t, out)
	if len(images) != 1 {
		t.Fatalf("layout holds %d names, want 1", len(images))
	}
	config, err := images["example.com/a:1"].ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if config.Config.User != "2" {
		t.Errorf("user = %q, want 2 from the second run", config.Config.User)
	}
}

func TestRunRejectsShortName(t *testing.T) {
	err := run(options{layoutDir: t.TempDir(), layers: []string{t.TempDir()}, names: []string{"busybox"}})
	if err == nil {
		t.Fatal("run() with the name busybox succeeded, want an error asking for a full reference")
	}
}

func TestJSONArgsRejectsPlainString(t *testing.T) {
	var args jsonArgs
	if err := args.Set("sh -c true"); err == nil {
		t.Fatal("Set(sh -c true) succeeded, want an error asking for a JSON array")
	}
}

func baseLayerDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) == 0 {
		t.Fatalf("layers = %d, %v; want at least one", len(layers), err)
	}
	digest, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return digest
}

func layerHeaders(t *testing.T, layer v1.Layer) map[string]*tar.Header {
	t.Helper()
	rc, err := layer.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()

	headers := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		header, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return headers
		}
		if err != nil {
			t.Fatalf("read layer: %v", err)
		}
		headers[header.Name] = header
	}
}
