// Command containerd-shim-reaper-v2 is the containerd shim of Reaper: it runs a
// pod's containers as plain processes on the host.
package main

import (
	"context"
	"os"

	"reaper.dev/reaper/runtime/initproc"
	"reaper.dev/reaper/shim"
)

func main() {
	// The init helper and the pause process are this binary re-executed by the shim;
	// they must be dispatched before RunShim parses containerd's flags.
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case initproc.InitArg:
			initproc.RunInit()
		case initproc.PauseArg:
			initproc.RunPause()
		}
	}

	shim.Register()
	shim.Run(context.Background())
}
