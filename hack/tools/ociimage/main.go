// Command ociimage writes Reaper's image, the one the Dockerfile builds, as an OCI archive
// tarball without Docker: one layer with the static binaries in /usr/local/bin, the nonroot
// user 65532 and reaper-controller as the entrypoint. `ctr images import` reads the archive and
// names the image after its io.containerd.image.name annotation.
//
// Usage:
//
//	ociimage -bin-dir bin -name reaper:v0.1.0 -output bin/images/reaper.tar
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// defaultBinaries are the commands of cmd/ that the image carries: the controller, the agent,
// and the runtime binaries that the agent copies to the nodes.
var defaultBinaries = []string{
	"reaper-controller", "reaper-installer", "containerd-shim-reaper-v2", "reaper-runtime", "reaper-init",
}

func main() {
	opts := options{}
	var binaries string
	flag.StringVar(&opts.binDir, "bin-dir", "bin", "folder with the static binaries of make build")
	flag.StringVar(&binaries, "binaries", strings.Join(defaultBinaries, ","), "comma-separated binaries to put into /usr/local/bin")
	flag.StringVar(&opts.ref, "name", "", "image name, such as reaper:v0.1.0 (required)")
	flag.StringVar(&opts.output, "output", "", "OCI archive tarball to write (required)")
	flag.StringVar(&opts.arch, "arch", runtime.GOARCH, "GOARCH the binaries were built for")
	flag.StringVar(&opts.version, "version", "", "version recorded in the org.opencontainers.image.version label")
	flag.Parse()
	opts.binaries = strings.Split(binaries, ",")

	if err := run(opts); err != nil {
		fmt.Fprintf(os.Stderr, "ociimage: %v\n", err)
		os.Exit(1)
	}
}
