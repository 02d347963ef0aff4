// Command reaper-runtime is an OCI runtime CLI that runs a bundle's process as a plain
// host process, on the same core as containerd-shim-reaper-v2.
package main

import (
	"fmt"
	"os"

	"reaper.dev/reaper/runtime/initproc"
)

func main() {
	// The init helper is this binary re-executed by create; it needs no flag parsing.
	if len(os.Args) > 1 && os.Args[1] == initproc.InitArg {
		initproc.RunInit()
	}

	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "reaper-runtime: %v\n", err)
		os.Exit(1)
	}
}
