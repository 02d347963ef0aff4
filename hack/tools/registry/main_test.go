package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// writeLayout writes a layout holding img under each of names, and returns its folder.
func writeLayout(t *testing.T, img v1.Image, names ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	path, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range names {
		var opts []layout.Option
		if ref != "" {
			opts = append(opts, layout.WithAnnotations(map[string]string{refNameAnnotation: ref}))
		}
		if err := path.AppendImage(img, opts...); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startRegistry runs the registry until the test ends and returns its address.
func startRegistry(t *testing.T, layoutDir string) string {
	t.Helper()
	addressFile := filepath.Join(t.TempDir(), "address")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, options{address: "127.0.0.1:0", layoutDir: layoutDir, addressFile: addressFile})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run() after cancel: %v", err)
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("run() returned before serving: %v", err)
		default:
		}
		if content, err := os.ReadFile(addressFile); err == nil {
			return strings.TrimSpace(string(content))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the registry wrote no address file within 10s")
	return ""
}

func TestRunServesLayoutImagesWithoutHost(t *testing.T) {
	img, err := random.Image(64, 2)
	if err != nil {
		t.Fatal(err)
	}
	address := startRegistry(t, writeLayout(t, img, "registry.k8s.io/pause:3.9", "gcr.io/k8s-staging-cri-tools/test-image-tags:2"))
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}

	for _, path := range []string{"/v2/pause/manifests/3.9", "/v2/k8s-staging-cri-tools/test-image-tags/manifests/2"} {
		got := manifestDigest(t, "http://"+address+path)
		if got != want {
			t.Errorf("%s has digest %s, want %s", path, got, want)
		}
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layerDigest, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	if status := getStatus(t, "http://"+address+"/v2/pause/blobs/"+layerDigest.String()); status != http.StatusOK {
		t.Errorf("GET of layer %s: status %d, want 200", layerDigest, status)
	}
}

// manifestDigest fetches the manifest at url and returns the digest of its body.
func manifestDigest(t *testing.T, url string) v1.Hash {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200", url, resp.StatusCode)
	}
	digest, _, err := v1.SHA256(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return digest
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRunRejectsAddressOffLoopback(t *testing.T) {
	for _, address := range []string{"0.0.0.0:0", "localhost:0", ":0"} {
		err := run(context.Background(), options{address: address, layoutDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("run() with -address %s: error %v, want one naming loopback", address, err)
		}
	}
}

func TestRunRejectsImageWithoutName(t *testing.T) {
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), options{address: "127.0.0.1:0", layoutDir: writeLayout(t, img, "")})
	if err == nil || !strings.Contains(err.Error(), refNameAnnotation) {
		t.Errorf("run() error %v, want one naming the missing %s annotation", err, refNameAnnotation)
	}
}

func TestSplitReference(t *testing.T) {
	const digest = "sha256:9700f9a2f5bf2c45f2f605a0bd3bce7cf37420ec9d3ed50ac2758413308766bf"
	for _, tc := range []struct{ ref, repository, identifier string }{
		{"registry.k8s.io/pause:3.9", "pause", "3.9"},
		{"gcr.io/k8s-staging-cri-tools/test-image-digest@" + digest, "k8s-staging-cri-tools/test-image-digest", digest},
	} {
		repository, identifier, err := splitReference(tc.ref)
		if err != nil {
			t.Errorf("splitReference(%s): %v", tc.ref, err)
			continue
		}
		if repository != tc.repository || identifier != tc.identifier {
			t.Errorf("splitReference(%s) = %s, %s; want %s, %s", tc.ref, repository, identifier, tc.repository, tc.identifier)
		}
	}
}
