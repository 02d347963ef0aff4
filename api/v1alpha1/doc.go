// Package v1alpha1 contains the ReaperNode API of group reaper.dev, version v1alpha1. A
// ReaperNode carries the per-node settings of the Reaper runtime and the state that the
// node agent reports. controller-gen turns the markers in this package into the CRD and
// the deep-copy functions (make generate).
//
// +kubebuilder:object:generate=true
// +groupName=reaper.dev
package v1alpha1
