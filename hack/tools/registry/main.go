// Command registry serves an in-memory image registry on a loopback address, holding every image
// of an OCI image layout. Each image is pushed under the reference in its
// org.opencontainers.image.ref.name annotation, with the registry host left out: an image named
// registry.k8s.io/pause:3.9 is served as pause:3.9. A containerd whose registry hosts
// configuration sends every host to this registry can then pull all of them.
//
// The images are pushed through the registry's HTTP handler in the same process, before it
// serves. It writes its address to -address-file once it serves, and serves until SIGTERM or
// SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// refNameAnnotation is the OCI layout annotation that hack/tools/dirimage stores an image's full
// reference in.
const refNameAnnotation = "org.opencontainers.image.ref.name"

const shutdownTimeout = 5 * time.Second

type options struct {
	address     string
	layoutDir   string
	addressFile string
}

func main() {
	var opts options
	flag.StringVar(&opts.address, "address", "127.0.0.1:0", "loopback IP and port to listen on; port 0 picks a free port")
	flag.StringVar(&opts.layoutDir, "layout", "", "OCI image layout whose images are pushed at start (required)")
	flag.StringVar(&opts.addressFile, "address-file", "", "file to write the listening address to once the registry serves every image")
	flag.Parse()

	log.SetPrefix("registry: ")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx, opts)
	stop()
	if err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, opts options) error {
	if opts.layoutDir == "" {
		return errors.New("-layout is required; see -help")
	}
	listener, err := listenLoopback(opts.address)
	if err != nil {
		return err
	}
	address := listener.Addr().String()
	handler := registry.New()
	// The images are pushed before the server handles any request, so a client that finds the
	// address file can pull every image.
	if err := pushLayout(handler, opts.layoutDir); err != nil {
		_ = listener.Close()
		return err
	}
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	log.Printf("serving on %s", address)
	if opts.addressFile != "" {
		if err := writeFileAtomic(opts.addressFile, address+"\n"); err != nil {
			_ = server.Close()
			return err
		}
	}

	select {
	case err := <-served:
		return fmt.Errorf("serve on %s: %w", address, err)
	case <-ctx.Done():
	}
	log.Printf("stopping")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return server.Shutdown(shutdownCtx)
}

// listenLoopback listens on address, which must name a loopback IP: the registry serves test
// images without authentication and must not be reachable from other machines.
func listenLoopback(address string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("invalid -address %q: %w", address, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("-address %q is not a loopback IP and port; use one such as 127.0.0.1:5000", address)
	}
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", address, err)
	}
	return listener, nil
}

// pushLayout pushes every image of the layout in dir into handler.
func pushLayout(handler http.Handler, dir string) error {
	path, err := layout.FromPath(dir)
	if err != nil {
		return fmt.Errorf("open OCI image layout %s: %w", dir, err)
	}
	index, err := path.ImageIndex()
	if err != nil {
		return fmt.Errorf("read the index of layout %s: %w", dir, err)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		return fmt.Errorf("read the index of layout %s: %w", dir, err)
	}

	pusher := &pusher{handler: handler, pushed: map[v1.Hash]bool{}}
	for _, desc := range manifest.Manifests {
		ref := desc.Annotations[refNameAnnotation]
		if ref == "" {
			return fmt.Errorf("image %s in layout %s has no %s annotation; add images with hack/tools/dirimage", desc.Digest, dir, refNameAnnotation)
		}
		repository, identifier, err := splitReference(ref)
		if err != nil {
			return err
		}
		img, err := path.Image(desc.Digest)
		if err != nil {
			return fmt.Errorf("read image %s (%s) from layout %s: %w", ref, desc.Digest, dir, err)
		}
		if err := pusher.pushImage(repository, identifier, img); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		log.Printf("pushed %s as %s:%s", ref, repository, identifier)
	}
	return nil
}

// splitReference returns the repository path of ref without its registry host, and its tag or
// digest.
func splitReference(ref string) (repository, identifier string, err error) {
	parsed, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return "", "", fmt.Errorf("invalid image reference %q in the layout: %w", ref, err)
	}
	return parsed.Context().RepositoryStr(), parsed.Identifier(), nil
}

// writeFileAtomic writes content beside path and renames it, so a reader polling for path never
// reads a partial address.
func writeFileAtomic(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write address file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write address file: %w", err)
	}
	return nil
}
