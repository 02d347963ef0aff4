// Command reaper-init is the small helper that containerd-shim-reaper-v2 starts for
// every container process: "reaper-init init" applies the spec's process settings and
// execs the workload, and "reaper-init pause" stands for a pod sandbox. The shim can
// play both parts itself, but this binary starts faster.
package main

import (
	"fmt"
	"os"

	"reaper.dev/reaper/runtime/initproc"
)

func main() {
	if len(os.Args) == 2 {
		switch os.Args[1] {
		case initproc.InitArg:
			initproc.RunInit()
		case initproc.PauseArg:
			initproc.RunPause()
		}
	}

	fmt.Fprintf(os.Stderr, "usage: %s %s|%s\nreaper-init is started by containerd-shim-reaper-v2, not by hand.\n",
		os.Args[0], initproc.InitArg, initproc.PauseArg)
	os.Exit(2)
}
