package main

import (
	"github.com/spf13/cobra"

	"reaper.dev/reaper/installer"
)

func newUninstallCommand() *cobra.Command {
	var host hostFlags
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove the Reaper containerd drop-in, then the installed Reaper binaries",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := host.options()
			if err != nil {
				return err
			}

			log := newLogger()
			unlock, err := host.lock(opts, log)
			if err != nil {
				return err
			}
			defer unlock()

			plan, err := installer.PlanUninstall(opts)
			if err != nil {
				return err
			}
			if host.dryRun {
				return plan.Describe(cmd.OutOrStdout())
			}

			restart, err := host.restart(opts)
			if err != nil {
				return err
			}
			if restart != nil {
				if err := restart.Restarter.Check(cmd.Context()); err != nil {
					return err
				}
			}
			changed, err := plan.Apply(log)
			if err != nil {
				return err
			}
			if restart == nil || !changed {
				reportRestart(log, changed)
				return nil
			}

			log.Info("restarting containerd to unload the Reaper handlers")
			return restart.RestartAndWait(cmd.Context())
		},
	}

	host.register(cmd.Flags())
	return cmd
}
