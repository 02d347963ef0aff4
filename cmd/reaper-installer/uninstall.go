package main

import (
	"github.com/spf13/cobra"

	"reaper.dev/reaper/installer"
)

func newUninstallCommand() *cobra.Command {
	var host hostFlags
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Revert the containerd config files that install wrote, then remove the Reaper binaries",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := host.options()
			if err != nil {
				return err
			}

			return host.runPlan(cmd, opts, func(opts installer.Options) (installer.Plan, error) {
				return installer.PlanUninstall(opts)
			})
		},
	}

	host.register(cmd.Flags())
	return cmd
}
