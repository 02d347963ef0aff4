package controllers

// The controller's ClusterRole, which `make generate` writes to config/rbac/role.yaml.
// Each rule names the work that needs it.

// Nodes: read them, and set or remove the agent and ready labels with a patch.
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch;patch

// ReaperNodes: create one per selected Node, delete it when the Node is deselected, and
// remove the agent's finalizer when the Node is gone. The status carries the
// controller's conditions.
// +kubebuilder:rbac:groups=reaper.dev,resources=reapernodes,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=reaper.dev,resources=reapernodes/status,verbs=get;patch

// The installer DaemonSet, the RuntimeClasses and the admission policies: keep them
// in line with the config, and delete them on teardown.
// +kubebuilder:rbac:groups=apps,resources=daemonsets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=node.k8s.io,resources=runtimeclasses,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingadmissionpolicies;validatingadmissionpolicybindings,verbs=get;list;watch;create;patch;delete

// Events on Nodes and ReaperNodes.
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// The rules below name a namespace, so controller-gen writes them into a Role rather than
// the ClusterRole. The namespace is a placeholder: the chart creates the Role in its
// release namespace, where the controller runs.

// Leader election, in the controller's namespace.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update,namespace=reaper-system

// Teardown: scale the controller's Deployment to zero and wait until its pods are gone.
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get,namespace=reaper-system
// +kubebuilder:rbac:groups=apps,resources=deployments/scale,verbs=patch,namespace=reaper-system
// +kubebuilder:rbac:groups="",resources=pods,verbs=list,namespace=reaper-system
