package main

import (
	"github.com/spf13/cobra"

	"reaper.dev/reaper/runtime"
)

func newDeleteCommand(opts *globalOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete [flags] CONTAINER_ID",
		Short: "Remove a stopped container's state; --force kills a running one first",
		Example: `  reaper-runtime delete demo
  reaper-runtime delete --force demo`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			container, err := runtime.Load(opts.root, args[0])
			if err != nil {
				return err
			}

			if err := container.Delete(force); err != nil {
				return err
			}
			opts.logger.Info("deleted container", "id", container.ID, "force", force)
			return nil
		},
	}

	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill the container's processes if it still runs")
	return cmd
}
