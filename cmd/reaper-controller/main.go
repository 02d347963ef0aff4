// Command reaper-controller is Reaper's cluster controller. It keeps the installer
// DaemonSet, the RuntimeClasses, the admission policies and one ReaperNode per selected
// Node, and labels the Nodes where Reaper is ready. Its teardown subcommand removes
// Reaper from the cluster.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"reaper.dev/reaper/controllers"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

// commonFlags are the flags that the controller and teardown share.
type commonFlags struct {
	configFile string
	namespace  string
	image      string
	qps        float32
	burst      int
	zap        zap.Options
}

func (f *commonFlags) register(flags *pflag.FlagSet) {
	flags.StringVar(&f.configFile, "config", "", "path of the controller's YAML config; empty uses the defaults")
	flags.StringVar(&f.namespace, "namespace", os.Getenv("POD_NAMESPACE"),
		"the controller's namespace, where the installer DaemonSet runs unless the config names another (default $POD_NAMESPACE)")
	flags.StringVar(&f.image, "image", os.Getenv("REAPER_IMAGE"),
		"image of the installer DaemonSet unless the config's agent.image names another: the controller's own image (default $REAPER_IMAGE)")
	flags.Float32Var(&f.qps, "kube-api-qps", 50, "requests per second to the API server, sustained")
	flags.IntVar(&f.burst, "kube-api-burst", 100, "requests to the API server in a burst above --kube-api-qps")

	goFlags := flag.NewFlagSet("zap", flag.ExitOnError)
	f.zap.BindFlags(goFlags)
	flags.AddGoFlagSet(goFlags)
	// controller-runtime registers --kubeconfig on the standard flag set; ctrl.GetConfig
	// reads it.
	if kubeconfig := flag.CommandLine.Lookup("kubeconfig"); kubeconfig != nil {
		flags.AddGoFlag(kubeconfig)
	}
}

// setup loads the config, starts the structured logger and returns the API server's
// client config.
func (f *commonFlags) setup() (controllers.Config, *rest.Config, error) {
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&f.zap)))

	cfg, err := controllers.LoadConfig(f.configFile, f.namespace, f.image)
	if err != nil {
		return controllers.Config{}, nil, err
	}
	restConfig, err := ctrl.GetConfig()
	if err != nil {
		return controllers.Config{}, nil, fmt.Errorf("find the API server (in-cluster, $KUBECONFIG or ~/.kube/config): %w", err)
	}
	restConfig.QPS = f.qps
	restConfig.Burst = f.burst
	restConfig.UserAgent = "reaper-controller"
	return cfg, restConfig, nil
}

func newRootCommand() *cobra.Command {
	var common commonFlags
	opts := controllers.Options{}
	var workers int
	root := &cobra.Command{
		Use:   "reaper-controller",
		Short: "Run Reaper's cluster controller",
		Long: "Run Reaper's cluster controller. It keeps the installer DaemonSet, the RuntimeClasses, the admission\n" +
			"policies and one ReaperNode per selected Node, and labels the Nodes where Reaper is ready.",
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, restConfig, err := common.setup()
			if err != nil {
				return err
			}
			opts.Config = cfg
			opts.LeaderElectionNamespace = common.namespace
			opts.NodeWorkers = workers
			mgr, err := controllers.NewManager(restConfig, opts)
			if err != nil {
				return err
			}
			ctrl.Log.Info("Starting the controller", "namespace", cfg.Namespace, "image", cfg.Agent.Image, "leaderElection", opts.LeaderElection)
			if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
				return fmt.Errorf("run the controller: %w", err)
			}
			return nil
		},
	}
	flags := root.Flags()
	common.register(flags)
	flags.BoolVar(&opts.LeaderElection, "leader-elect", true, "elect a leader, so that one of several replicas works at a time")
	flags.StringVar(&opts.MetricsBindAddress, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint /metrics; 0 turns it off")
	flags.StringVar(&opts.HealthProbeBindAddress, "health-probe-bind-address", ":8081", "address of /healthz and /readyz; 0 turns them off")
	flags.IntVar(&workers, "node-workers", 4, "how many Nodes the controller reconciles at once")

	root.AddCommand(newTeardownCommand())
	return root
}
