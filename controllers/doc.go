// Package controllers holds the cluster reconcilers of reaper-controller. The
// +kubebuilder:rbac markers in rbac.go are the permissions that make generate writes
// into the controller's ClusterRole, config/rbac/role.yaml.
package controllers
