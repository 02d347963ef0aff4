package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestRunWritesLoadableImage(t *testing.T) {
	dir := t.TempDir()
	binary := filepath.Join(dir, "hello")
	if err := os.WriteFile(binary, []byte("#!fake binary"), 0o600); err != nil {
		t.Fatal(err)
	}
	output := filepath.Join(dir, "out", "hello.tar")

	err := run(options{binary: binary, imagePath: "/hello", ref: "localhost/reaper/hello:1", output: output, arch: "arm64", user: "65535:65535"})
	if err != nil {
		t.Fatalf("run() error: %v", err)
	}

	img, err := tarball.ImageFromPath(output, nil)
	if err != nil {
		t.Fatalf("read tarball back: %v", err)
	}
	config, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if config.OS != "linux" || config.Architecture != "arm64" {
		t.Errorf("platform = %s/%s, want linux/arm64", config.OS, config.Architecture)
	}
	if len(config.Config.Entrypoint) != 1 || config.Config.Entrypoint[0] != "/hello" {
		t.Errorf("entrypoint = %q, want [/hello]", config.Config.Entrypoint)
	}
	if config.Config.User != "65535:65535" {
		t.Errorf("user = %q, want 65535:65535", config.Config.User)
	}

	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v; want exactly one", len(layers), err)
	}
	assertSingleFile(t, layers[0].Uncompressed, "hello", "#!fake binary")
}

func TestRunIsReproducible(t *testing.T) {
	dir := t.TempDir()
	binary := filepath.Join(dir, "hello")
	if err := os.WriteFile(binary, []byte("same"), 0o600); err != nil {
		t.Fatal(err)
	}

	var digests []string
	for _, name := range []string{"a.tar", "b.tar"} {
		output := filepath.Join(dir, name)
		if err := run(options{binary: binary, imagePath: "/hello", ref: "localhost/x:1", output: output, arch: "amd64"}); err != nil {
			t.Fatal(err)
		}
		img, err := tarball.ImageFromPath(output, nil)
		if err != nil {
			t.Fatal(err)
		}
		digest, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, digest.String())
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of one binary have digests %s and %s, want equal", digests[0], digests[1])
	}
}

func TestRunRejectsRelativePath(t *testing.T) {
	err := run(options{binary: "x", imagePath: "hello", ref: "localhost/x:1", output: "x.tar"})
	if err == nil {
		t.Fatal("run() with a relative -path succeeded, want an error")
	}
}

func assertSingleFile(t *testing.T, open func() (io.ReadCloser, error), wantName, wantContent string) {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()

	tr := tar.NewReader(rc)
	header, err := tr.Next()
	if err != nil {
		t.Fatalf("read layer: %v", err)
	}
	if header.Name != wantName || header.Mode != 0o755 || header.Uid != 0 {
		t.Errorf("layer entry = %s mode %o uid %d, want %s mode 755 uid 0", header.Name, header.Mode, header.Uid, wantName)
	}
	content, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	if string(content) != wantContent {
		t.Errorf("layer file content = %q, want %q", content, wantContent)
	}
	if _, err := tr.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("layer has more than one entry (next: %v)", err)
	}
}
