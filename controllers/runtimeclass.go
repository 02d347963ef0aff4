package controllers

import (
	nodev1ac "k8s.io/client-go/applyconfigurations/node/v1"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
)

// runtimeClass returns a RuntimeClass of handler that schedules its pods only on the
// Nodes labeled ready.
func runtimeClass(name, handler string) *nodev1ac.RuntimeClassApplyConfiguration {
	return nodev1ac.RuntimeClass(name).
		WithLabels(managedLabels()).
		WithHandler(handler).
		WithScheduling(nodev1ac.Scheduling().WithNodeSelector(map[string]string{reaperv1alpha1.ReadyLabel: "true"}))
}
