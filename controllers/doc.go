// Package controllers holds the cluster reconcilers of reaper-controller. The
// +kubebuilder:rbac markers in this package are the permissions that make generate writes
// into the controller's ClusterRole, config/rbac/role.yaml.
package controllers

// These permissions let the controller create and delete one ReaperNode per selected Node,
// and set or remove the ready label on Nodes.
// TODO: the markers cover ReaperNodes and Node labels only. The reconcilers add the
// markers for DaemonSets, RuntimeClasses, admission policies and Events beside their code.
// +kubebuilder:rbac:groups=reaper.dev,resources=reapernodes,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch;patch
