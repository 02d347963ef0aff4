package initproc

import (
	"os"
	"os/signal"
	"syscall"
)

// PauseArg is the first argument that switches the shim binary into its pause mode,
// the process that stands for a pod sandbox.
const PauseArg = "pause"

// RunPause blocks until SIGTERM or SIGINT and then exits with status 0.
func RunPause() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	os.Exit(0)
}
