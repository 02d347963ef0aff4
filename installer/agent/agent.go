// Package agent is the Kubernetes adapter of the installer. It runs on each node, watches
// the ReaperNode named after its node, runs the installer's install, drift check and
// uninstall on the host, and reports the result in that ReaperNode's status. The host
// logic stays in package installer, which imports nothing from Kubernetes.
package agent

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
	"reaper.dev/reaper/installer"
)

// FieldManager is the server-side apply field manager of the agent's status writes.
const FieldManager = "reaper-agent"

// Defaults of Options.
const (
	DefaultResyncPeriod  = 5 * time.Minute
	DefaultUninstallWait = 60 * time.Second
)

// Options configures the agent of one node.
type Options struct {
	// NodeName is the Node the agent runs on, and so the name of its ReaperNode.
	NodeName string
	// Host locates containerd and the installer's files. The ReaperNode's spec overrides
	// ContainerdConfig, ContainerdSocket and RestartMethod.
	Host installer.HostConfig
	// SourceDir is the folder that holds the binaries to install.
	SourceDir string
	// Handler is the runtime handler to register, unless the spec names another.
	Handler string
	// ProtectedHandler is the handler of the protected mode, or empty for none, and
	// ProtectedRoot its host root mode, or empty for the shim's default.
	ProtectedHandler string
	ProtectedRoot    string
	// Version is the version of the binaries in SourceDir, reported as installedVersion.
	Version string
	// ResyncPeriod is how often the agent checks the node for drift.
	ResyncPeriod time.Duration
	// UninstallWait bounds the wait, after deletion starts, for the controller's Ready
	// condition to turn False before the agent reverts the node.
	UninstallWait time.Duration
	// HealthProbeBindAddress serves /healthz and /readyz, or "0" for none.
	HealthProbeBindAddress string
	// MetricsBindAddress serves Prometheus metrics, or "0" for none.
	MetricsBindAddress string
}

// Validate checks the options that have no default.
func (o Options) Validate() error {
	var errs []error
	if o.NodeName == "" {
		errs = append(errs, errors.New("missing --node-name: set it, or NODE_NAME from the pod's spec.nodeName"))
	}
	if o.Handler == "" {
		errs = append(errs, fmt.Errorf("missing --handler: name the runtime handler to register, such as %s", installer.DefaultHandler))
	}
	if o.ProtectedRoot != "" && !slices.Contains(installer.ProtectedRoots, o.ProtectedRoot) {
		errs = append(errs, fmt.Errorf("invalid --protected-root %q: use %s", o.ProtectedRoot, strings.Join(installer.ProtectedRoots, " or ")))
	}
	if o.ProtectedRoot != "" && o.ProtectedHandler == "" {
		errs = append(errs, fmt.Errorf("--protected-root %s has no effect without a protected handler: set --protected-handler too", o.ProtectedRoot))
	}
	if o.ResyncPeriod <= 0 {
		errs = append(errs, fmt.Errorf("invalid --resync-period %s: use a positive duration, such as %s", o.ResyncPeriod, DefaultResyncPeriod))
	}
	if o.UninstallWait < 0 {
		errs = append(errs, fmt.Errorf("invalid --uninstall-wait %s: use a duration of 0 or more", o.UninstallWait))
	}
	return errors.Join(errs...)
}

// NewScheme returns the scheme of the objects the agent reads and writes.
func NewScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, eventsv1.AddToScheme, reaperv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, fmt.Errorf("build the agent's scheme: %w", err)
		}
	}
	return scheme, nil
}

// NewManager returns a manager that runs the agent's reconciler. Its cache holds only the
// node's own ReaperNode, it elects no leader, and it serves the health probes.
func NewManager(config *rest.Config, opts Options) (manager.Manager, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}

	own := fields.OneTermEqualSelector("metadata.name", opts.NodeName)
	mgr, err := ctrl.NewManager(config, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  cache.Options{ByObject: map[client.Object]cache.ByObject{&reaperv1alpha1.ReaperNode{}: {Field: own}}},
		Metrics:                metricsserver.Options{BindAddress: opts.MetricsBindAddress},
		HealthProbeBindAddress: opts.HealthProbeBindAddress,
		LeaderElection:         false,
	})
	if err != nil {
		return nil, fmt.Errorf("create the agent's manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("add the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, fmt.Errorf("add the readiness check: %w", err)
	}

	r := &Reconciler{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder(FieldManager), Options: opts}
	err = ctrl.NewControllerManagedBy(mgr).
		For(&reaperv1alpha1.ReaperNode{}).
		Named("reapernode-agent").
		// A node's agent runs one controller of this name. The name check would only stop a
		// test from starting a second agent in the same process.
		WithOptions(controller.Options{MaxConcurrentReconciles: 1, SkipNameValidation: ptr.To(true)}).
		Complete(r)
	if err != nil {
		return nil, fmt.Errorf("create the ReaperNode controller: %w", err)
	}
	return mgr, nil
}
