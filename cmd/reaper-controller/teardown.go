package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"reaper.dev/reaper/controllers"
)

func newTeardownCommand() *cobra.Command {
	var common commonFlags
	var deployment string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "teardown",
		Short: "Remove Reaper from every node and then from the cluster",
		Long: "Remove Reaper from the cluster: scale the controller's Deployment to 0, delete the RuntimeClasses and\n" +
			"the ready labels, delete every ReaperNode and wait until the agents have reverted their nodes, then\n" +
			"delete the admission policies, the installer DaemonSet and the agent labels. The chart's pre-delete\n" +
			"hook runs it with the controller's service account.",
		Example:      "  reaper-controller teardown --namespace reaper-system --config /etc/reaper/config.yaml --timeout 15m",
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if common.image == "" {
				// Teardown creates no DaemonSet, so it needs no image.
				common.image = "unused"
			}
			cfg, restConfig, err := common.setup()
			if err != nil {
				return err
			}
			scheme, err := controllers.NewScheme()
			if err != nil {
				return err
			}
			c, err := client.New(restConfig, client.Options{Scheme: scheme})
			if err != nil {
				return fmt.Errorf("create the API client: %w", err)
			}
			teardown := &controllers.Teardown{
				Client:     c,
				Config:     cfg,
				Deployment: deployment,
				// The Deployment runs in the controller's namespace, which the config's
				// namespace, that of the DaemonSet, defaults to.
				ControllerNamespace: common.namespace,
				Timeout:             timeout,
				Out:                 cmd.OutOrStdout(),
			}
			return teardown.Run(ctrl.SetupSignalHandler())
		},
	}
	common.register(cmd.Flags())
	cmd.Flags().StringVar(&deployment, "deployment", "reaper-controller", "the controller's Deployment in --namespace, which teardown scales to 0 first; empty skips it")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for the controller's pods to stop, and for the agents to revert their nodes")
	return cmd
}
