package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fakeBinaries writes a small file for each default binary and returns their folder.
func fakeBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, binary := range defaultBinaries {
		if err := os.WriteFile(filepath.Join(dir, binary), []byte("#!fake "+binary), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// untar extracts the archive at path into a new folder and returns it.
func untar(t *testing.T, path string) string {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	dir := t.TempDir()
	tr := tar.NewReader(file)
	for {
		header, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir
		}
		if err != nil {
			t.Fatalf("read archive: %v", err)
		}
		target := filepath.Join(dir, header.Name)
		if header.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(target, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(target, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRunWritesOCIArchive(t *testing.T) {
	output := filepath.Join(t.TempDir(), "images", "reaper.tar")
	opts := options{binDir: fakeBinaries(t), binaries: defaultBinaries, ref: "reaper:v1.2.3", output: output, arch: "amd64", version: "v1.2.3"}
	if err := run(opts); err != nil {
		t.Fatalf("run: %v", err)
	}

	index, err := layout.ImageIndexFromPath(untar(t, output))
	if err != nil {
		t.Fatalf("read OCI layout from the archive: %v", err)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(manifest.Manifests) != 1 {
		t.Fatalf("index lists %d images, want 1", len(manifest.Manifests))
	}
	descriptor := manifest.Manifests[0]
	if descriptor.MediaType != types.OCIManifestSchema1 {
		t.Errorf("manifest media type = %s, want %s", descriptor.MediaType, types.OCIManifestSchema1)
	}
	if got := descriptor.Annotations[containerdNameAnnotation]; got != "docker.io/library/reaper:v1.2.3" {
		t.Errorf("%s = %q, want docker.io/library/reaper:v1.2.3", containerdNameAnnotation, got)
	}

	img, err := index.Image(descriptor.Digest)
	if err != nil {
		t.Fatal(err)
	}
	config, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(config.Config.Entrypoint, []string{"/usr/local/bin/reaper-controller"}) {
		t.Errorf("entrypoint = %q", config.Config.Entrypoint)
	}
	if config.Config.User != "65532:65532" {
		t.Errorf("user = %q, want 65532:65532", config.Config.User)
	}
	if config.OS != "linux" || config.Architecture != "amd64" {
		t.Errorf("platform = %s/%s, want linux/amd64", config.OS, config.Architecture)
	}
	if config.Config.Labels["org.opencontainers.image.version"] != "v1.2.3" {
		t.Errorf("labels = %v, want the version v1.2.3", config.Config.Labels)
	}

	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v; want exactly one", len(layers), err)
	}
	mediaType, err := layers[0].MediaType()
	if err != nil || mediaType != types.OCILayer {
		t.Errorf("layer media type = %s, %v; want %s", mediaType, err, types.OCILayer)
	}
	entries := layerEntries(t, layers[0].Uncompressed)
	for _, binary := range defaultBinaries {
		header, ok := entries["usr/local/bin/"+binary]
		if !ok {
			t.Errorf("layer lacks /usr/local/bin/%s; entries: %v", binary, entries)
			continue
		}
		if header.Mode != 0o755 || header.Uid != 0 || header.Gid != 0 {
			t.Errorf("%s: mode %o owner %d:%d, want 755 root:root", binary, header.Mode, header.Uid, header.Gid)
		}
	}
	if _, ok := entries["etc/passwd"]; !ok {
		t.Error("layer lacks /etc/passwd")
	}
}

// layerEntries returns the headers of a layer's entries by name.
func layerEntries(t *testing.T, open func() (io.ReadCloser, error)) map[string]*tar.Header {
	t.Helper()
	reader, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(reader)
	for {
		header, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries
		}
		if err != nil {
			t.Fatalf("read layer: %v", err)
		}
		entries[header.Name] = header
	}
}

func TestRunIsReproducible(t *testing.T) {
	bin := fakeBinaries(t)
	dir := t.TempDir()
	var archives [][]byte
	for _, name := range []string{"first.tar", "second.tar"} {
		output := filepath.Join(dir, name)
		if err := run(options{binDir: bin, binaries: defaultBinaries, ref: "reaper:dev", output: output, arch: "amd64"}); err != nil {
			t.Fatal(err)
		}
		content, err := os.ReadFile(output)
		if err != nil {
			t.Fatal(err)
		}
		archives = append(archives, content)
	}
	if !bytes.Equal(archives[0], archives[1]) {
		t.Error("two runs on the same binaries wrote different archives")
	}
}

func TestRunReportsMissingBinary(t *testing.T) {
	bin := fakeBinaries(t)
	if err := os.Remove(filepath.Join(bin, "reaper-controller")); err != nil {
		t.Fatal(err)
	}
	output := filepath.Join(t.TempDir(), "reaper.tar")
	err := run(options{binDir: bin, binaries: defaultBinaries, ref: "reaper:dev", output: output, arch: "amd64"})
	if err == nil || !strings.Contains(err.Error(), "reaper-controller") || !strings.Contains(err.Error(), "make build") {
		t.Errorf("error = %v, want one that names reaper-controller and make build", err)
	}
	if _, statErr := os.Stat(output); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("a failed run left %s behind", output)
	}
}

func TestFullNameNormalizes(t *testing.T) {
	cases := map[string]string{
		"reaper:dev":                       "docker.io/library/reaper:dev",
		"example/reaper:v1":                "docker.io/example/reaper:v1",
		"registry.example:5000/reaper:v1":  "registry.example:5000/reaper:v1",
		"localhost/reaper/controller:test": "localhost/reaper/controller:test",
	}
	for ref, want := range cases {
		got, err := parseFullName(ref)
		if err != nil {
			t.Errorf("parse %q: %v", ref, err)
			continue
		}
		if got != want {
			t.Errorf("full name of %q = %q, want %q", ref, got, want)
		}
	}
}

func TestRunRequiresNameAndOutput(t *testing.T) {
	if err := run(options{ref: "reaper:dev"}); err == nil || !strings.Contains(err.Error(), "required") {
		t.Errorf("run without -output: error %v, want a required-flag error", err)
	}
	if err := run(options{ref: "Reaper:dev", output: "x.tar"}); err == nil || !strings.Contains(err.Error(), "invalid image name") {
		t.Errorf("run with an uppercase name: error %v, want an invalid image name error", err)
	}
}

func TestDefaultBinariesCoverEveryCommand(t *testing.T) {
	entries, err := os.ReadDir("../../../cmd")
	if err != nil {
		t.Fatal(err)
	}
	for _, entry := range entries {
		if entry.IsDir() && !slices.Contains(defaultBinaries, entry.Name()) {
			t.Errorf("cmd/%s is not in the image; the Dockerfile copies every command, so add it to defaultBinaries", entry.Name())
		}
	}
}
