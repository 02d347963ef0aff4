package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"reaper.dev/reaper/installer"
	"reaper.dev/reaper/installer/agent"
	"reaper.dev/reaper/shim"
)

func newAgentCommand() *cobra.Command {
	var (
		host       hostFlags
		opts       agent.Options
		kubeconfig string
		zapOpts    zap.Options
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent: install Reaper as this node's ReaperNode asks, report its status, repair drift and uninstall on deletion",
		Long: `Run the node agent that the installer DaemonSet starts on each node. It watches the ReaperNode
named after the node, installs the binaries and registers the runtime handlers with containerd,
checks the node every --resync-period and repairs drift, and reverts the node when the ReaperNode
is deleted. A SIGTERM stops the agent and leaves the node as it is.`,
		Example: `  reaper-installer agent --node-name=$(NODE_NAME) --host-root=/host --restart=auto \
    --handler=reaper --protected-handler=reaper-protected --health-probe-bind-address=:8082`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
			opts.Host = host.config
			if opts.SourceDir == "" {
				opts.SourceDir = executableDir()
			}
			config, err := restConfig(kubeconfig)
			if err != nil {
				return err
			}

			mgr, err := agent.NewManager(config, opts)
			if err != nil {
				return err
			}
			ctrl.Log.Info("Starting the node agent", "node", opts.NodeName, "version", opts.Version, "resyncPeriod", opts.ResyncPeriod.String())
			return mgr.Start(ctrl.SetupSignalHandler())
		},
	}

	flags := cmd.Flags()
	host.registerPaths(flags)
	registerChangeFlags(flags, &host.config)
	flags.StringVar(&opts.NodeName, "node-name", os.Getenv("NODE_NAME"), "name of this node and of its ReaperNode (default: $NODE_NAME)")
	flags.StringVar(&opts.SourceDir, "source-dir", "",
		"directory containing containerd-shim-reaper-v2, reaper-runtime and reaper-init to install (default: the directory of this executable)")
	flags.StringVar(&opts.Handler, "handler", installer.DefaultHandler, "CRI runtime handler to register, unless the ReaperNode's spec.runtimeHandler names another")
	flags.StringVar(&opts.ProtectedHandler, "protected-handler", installer.DefaultProtectedHandler, "CRI runtime handler to register in the protected mode; empty for none")
	flags.StringVar(&opts.ProtectedRoot, "protected-root", "",
		`host root of the protected handler: "overlay", whose writes vanish with the container, or "read-only" (default: the shim's, overlay)`)
	flags.DurationVar(&opts.ResyncPeriod, "resync-period", agent.DefaultResyncPeriod, "how often the agent checks the node for drift and repairs it")
	flags.DurationVar(&opts.UninstallWait, "uninstall-wait", agent.DefaultUninstallWait,
		"how long after the ReaperNode's deletion the agent waits for the controller to set Ready to False before it reverts the node")
	flags.StringVar(&opts.HealthProbeBindAddress, "health-probe-bind-address", ":8082", `address of the /healthz and /readyz endpoints; "0" for none`)
	flags.StringVar(&opts.MetricsBindAddress, "metrics-bind-address", "0", `address of the Prometheus metrics endpoint, such as :8083; "0" for none`)
	flags.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file of the cluster (default: the pod's service account)")
	opts.Version = shim.Version

	zapFlags := flag.NewFlagSet("zap", flag.ContinueOnError)
	zapOpts.BindFlags(zapFlags)
	flags.AddGoFlagSet(zapFlags)
	return cmd
}

// restConfig returns the client config of the kubeconfig file, or of the pod's service
// account and the usual fallbacks when the path is empty.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		config, err := ctrl.GetConfig()
		if err != nil {
			return nil, fmt.Errorf("find the cluster's client config: %w; run the agent in a pod or pass --kubeconfig", err)
		}
		return config, nil
	}
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load --kubeconfig %s: %w", kubeconfig, err)
	}
	return config, nil
}
