package main

import (
	"context"
	"slices"

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
			if restart == nil {
				reportRestart(log, changed)
				return nil
			}
			// An uninstall killed before its restart left containerd serving the handlers.
			if !changed && !servesReaper(cmd.Context(), restart) {
				log.Info("nothing changed")
				return nil
			}

			log.Info("restarting containerd to unload the Reaper handlers")
			return restart.RestartAndWait(cmd.Context())
		},
	}

	host.register(cmd.Flags())
	return cmd
}

// servesReaper reports whether containerd's CRI lists a handler of the Reaper shim. The
// handler names are not known once the config is gone, so it looks for the default ones.
func servesReaper(ctx context.Context, restart *installer.Restart) bool {
	served, err := restart.Served(ctx)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(served, func(name string) bool {
		return name == installer.DefaultHandler || name == installer.DefaultProtectedHandler
	})
}
