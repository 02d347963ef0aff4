package main

import (
	"github.com/spf13/cobra"

	"reaper.dev/reaper/runtime"
)

func newStartCommand(opts *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "start CONTAINER_ID",
		Short:   "Run the process of a created container",
		Example: "  reaper-runtime start demo",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			container, err := runtime.Load(opts.root, args[0])
			if err != nil {
				return err
			}

			if err := container.Start(); err != nil {
				return err
			}
			opts.logger.Info("started container", "id", container.ID, "pid", container.Pid)
			return nil
		},
	}
}
