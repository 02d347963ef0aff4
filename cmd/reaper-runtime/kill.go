package main

import (
	"fmt"
	"syscall"

	"github.com/moby/sys/signal"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"reaper.dev/reaper/runtime"
)

func newKillCommand(opts *globalOptions) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [flags] CONTAINER_ID [SIGNAL]",
		Short: "Send a signal (default SIGTERM) to a container's process",
		Example: `  reaper-runtime kill demo
  reaper-runtime kill --all demo KILL`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			sig := syscall.SIGTERM
			if len(args) == 2 {
				parsed, err := signal.ParseSignal(args[1])
				if err != nil {
					return fmt.Errorf("invalid signal %q: use a name such as TERM or KILL, or a number: %w", args[1], err)
				}
				sig = parsed
			}

			container, err := runtime.Load(opts.root, args[0])
			if err != nil {
				return err
			}

			if err := container.Signal(sig, all); err != nil {
				return err
			}
			opts.logger.Info("signalled container", "id", container.ID, "signal", unix.SignalName(sig), "all", all)
			return nil
		},
	}

	cmd.Flags().BoolVarP(&all, "all", "a", false, "signal every process of the container, not only its main process")
	return cmd
}
