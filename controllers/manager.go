package controllers

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
)

const (
	// FieldManager is the server-side apply field manager of everything the controller
	// writes, and the name of its event recorder.
	FieldManager = "reaper-controller"
	// EventSource is the reporting controller of the controller's Events.
	EventSource = "reaper.dev/reaper-controller"
	// LeaderElectionID names the Lease that the controller's replicas elect a leader with.
	LeaderElectionID = "reaper-controller.reaper.dev"
)

// Options configures NewManager.
type Options struct {
	// Config is the controller's config, as LoadConfig returns it.
	Config Config
	// LeaderElection turns on leader election, in LeaderElectionNamespace.
	LeaderElection          bool
	LeaderElectionNamespace string
	// MetricsBindAddress serves Prometheus metrics on /metrics; "0" turns it off.
	MetricsBindAddress string
	// HealthProbeBindAddress serves /healthz and /readyz; "0" or "" turns it off.
	HealthProbeBindAddress string
	// NodeWorkers is how many Nodes are reconciled at once; 0 means 1.
	NodeWorkers int
	// SkipNameValidation lets a process start a second manager with the same controller
	// names after the first one stopped, as the tests do.
	SkipNameValidation bool
	// NewClient, when set, builds the manager's client, such as a client that counts
	// requests in a test.
	NewClient client.NewClientFunc
}

// NewScheme returns a scheme with the built-in Kubernetes types and ReaperNode.
func NewScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("add the Kubernetes types to the scheme: %w", err)
	}
	if err := reaperv1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("add ReaperNode to the scheme: %w", err)
	}
	return scheme, nil
}

// NewManager builds a manager with the Node and the cluster reconcilers, health checks
// and metrics. Start it with its Start method.
func NewManager(restConfig *rest.Config, opts Options) (ctrl.Manager, error) {
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}

	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   cacheOptions(opts.Config),
		NewClient:               opts.NewClient,
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsBindAddress},
		Controller:              config.Controller{SkipNameValidation: &opts.SkipNameValidation},
		HealthProbeBindAddress:  opts.HealthProbeBindAddress,
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        LeaderElectionID,
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		// The controller stops writing once it loses the lease, so the next leader
		// need not wait out the lease duration.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return nil, fmt.Errorf("create the controller manager: %w", err)
	}

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, fmt.Errorf("add the /healthz check: %w", err)
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return nil, fmt.Errorf("add the /readyz check: %w", err)
	}

	if err := SetupReconcilers(mgr, opts.Config, opts.NodeWorkers); err != nil {
		return nil, err
	}
	return mgr, nil
}

// SetupReconcilers adds the Node reconciler, with nodeWorkers workers, and the cluster
// reconciler to mgr.
func SetupReconcilers(mgr ctrl.Manager, cfg Config, nodeWorkers int) error {
	recorder := mgr.GetEventRecorder(EventSource)
	nodes := &NodeReconciler{Client: mgr.GetClient(), Config: cfg, Recorder: recorder, Workers: nodeWorkers}
	if err := nodes.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the Node reconciler: %w", err)
	}
	cluster := &ClusterReconciler{Client: mgr.GetClient(), Config: cfg}
	if err := cluster.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the cluster reconciler: %w", err)
	}
	return nil
}

// cacheOptions limits the cache to what the reconcilers read. Nodes and ReaperNodes,
// one each per node, are kept without their managed fields. The reconcilers compare
// the DaemonSet, the RuntimeClasses and the policies with what their field manager
// owns, so those keep theirs.
func cacheOptions(cfg Config) cache.Options {
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Node{}:               {Transform: cache.TransformStripManagedFields()},
			&reaperv1alpha1.ReaperNode{}: {Transform: cache.TransformStripManagedFields()},
			&appsv1.DaemonSet{}: {
				Namespaces: map[string]cache.Config{cfg.Namespace: {}},
				Field:      fields.OneTermEqualSelector("metadata.name", cfg.Agent.Name),
			},
		},
	}
}
