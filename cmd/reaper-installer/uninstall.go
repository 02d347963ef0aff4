package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"reaper.dev/reaper/installer"
)

// maxNamedPods is how many running pods the refusal names.
const maxNamedPods = 5

func newUninstallCommand() *cobra.Command {
	var (
		host  hostFlags
		force bool
	)
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Revert the containerd config files that install wrote, then remove the Reaper binaries",
		Long: `Revert the containerd config files that install wrote, then remove the Reaper binaries.
It refuses while pods of the installed runtime handlers run on the node, because the restarted
containerd would no longer find their containers. Delete those pods first, or pass --force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := host.options()
			if err != nil {
				return err
			}
			if !force && !host.dryRun {
				if err := checkNoReaperPods(cmd.Context(), host.host, opts); err != nil {
					return err
				}
			}

			return host.runPlan(cmd, opts, func(opts installer.Options) (installer.Plan, error) {
				return installer.PlanUninstall(opts)
			})
		},
	}

	host.register(cmd.Flags())
	cmd.Flags().BoolVar(&force, "force", false,
		"revert the node even while pods of Reaper's handlers run on it: their processes keep running, but containerd no longer finds their containers, so exec into them fails")
	return cmd
}

// checkNoReaperPods fails when pods of the handlers that the install record lists run on the
// node. A node without a record, or whose containerd is unreachable, passes.
func checkNoReaperPods(ctx context.Context, host *installer.Host, opts installer.Options) error {
	record, err := installer.ReadRecord(opts)
	if err != nil {
		return err
	}
	if record == nil {
		return nil
	}
	handlers := record.HandlerNames()

	pods, err := host.ReadySandboxes(ctx, handlers)
	if err != nil {
		newLogger().Warn("Cannot list the node's pods through CRI, so uninstall does not check for running Reaper pods", "error", err.Error())
		return nil
	}
	if len(pods) == 0 {
		return nil
	}
	return fmt.Errorf("pods of the runtime handlers %s still run on this node: %s; uninstalling now would leave their processes running "+
		"while containerd no longer finds their containers: delete them first (kubectl delete pod -n NAMESPACE NAME), or pass --force",
		strings.Join(handlers, ", "), installer.DescribePods(pods, maxNamedPods))
}
