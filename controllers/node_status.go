package controllers

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
)

// syncStatus writes the controller's part of the ReaperNode's status: phase Pending
// while no agent has set a phase, and the conditions HandlerAdvertised and Ready. It
// writes only what differs from the status in the cache.
func (r *NodeReconciler) syncStatus(ctx context.Context, node *corev1.Node, reaperNode *reaperv1alpha1.ReaperNode) error {
	conditions := r.conditions(node, reaperNode)
	if reaperNode.DeletionTimestamp == nil && reaperNode.Status.Phase == "" {
		return r.initStatus(ctx, reaperNode, conditions)
	}
	if sameConditions(reaperNode.Status.Conditions, conditions) {
		return nil
	}
	setTransitionTimes(conditions, reaperNode.Status.Conditions)
	apply, err := statusApplyConfiguration(reaperNode.Name, map[string]any{"conditions": conditions})
	if err != nil {
		return err
	}
	err = r.Client.Status().Apply(ctx, apply, client.FieldOwner(FieldManager), client.ForceOwnership)
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("apply the conditions of ReaperNode %s: %w", reaperNode.Name, err)
	}
	return nil
}

// initStatus sets phase Pending and the first conditions on a ReaperNode that no agent
// has reported on, in one write. The merge patch carries the resourceVersion of the
// cached ReaperNode, so it fails with a conflict, and the request is retried, when the
// agent has written a status that the cache does not show yet. A forced apply from a
// stale cache would overwrite the agent's phase, and a merge patch without the lock
// would replace its conditions, because a merge patch replaces a list whole.
func (r *NodeReconciler) initStatus(ctx context.Context, reaperNode *reaperv1alpha1.ReaperNode, conditions []metav1.Condition) error {
	patch := client.MergeFromWithOptions(reaperNode.DeepCopy(), client.MergeFromWithOptimisticLock{})
	reaperNode.Status.Phase = reaperv1alpha1.PhasePending
	setTransitionTimes(conditions, reaperNode.Status.Conditions)
	for _, c := range conditions {
		meta.SetStatusCondition(&reaperNode.Status.Conditions, c)
	}
	err := r.Client.Status().Patch(ctx, reaperNode, patch, client.FieldOwner(FieldManager))
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("set phase Pending on ReaperNode %s: %w", reaperNode.Name, err)
	}
	return nil
}

// setTransitionTimes sets the transition time of each condition: that of the current
// condition of its type when the status stays, else now.
func setTransitionTimes(conditions, current []metav1.Condition) {
	now := metav1.Now()
	for i := range conditions {
		conditions[i].LastTransitionTime = now
		if old := meta.FindStatusCondition(current, conditions[i].Type); old != nil && old.Status == conditions[i].Status {
			conditions[i].LastTransitionTime = old.LastTransitionTime
		}
	}
}

// conditions returns the controller's conditions of reaperNode, without transition times.
func (r *NodeReconciler) conditions(node *corev1.Node, reaperNode *reaperv1alpha1.ReaperNode) []metav1.Condition {
	handler := r.Config.RuntimeClasses.Handler
	advertised := metav1.Condition{
		Type:               reaperv1alpha1.ConditionHandlerAdvertised,
		Status:             metav1.ConditionTrue,
		Reason:             reaperv1alpha1.ReasonSucceeded,
		Message:            fmt.Sprintf("Node status.runtimeHandlers lists handler %s", handler),
		ObservedGeneration: reaperNode.Generation,
	}
	isAdvertised := advertises(node, handler)
	if !isAdvertised {
		advertised.Status = metav1.ConditionFalse
		advertised.Reason = reaperv1alpha1.ReasonHandlerMissing
		advertised.Message = fmt.Sprintf("Node status.runtimeHandlers does not list handler %s yet: the kubelet copies it from containerd's CRI status", handler)
	}

	ready := metav1.Condition{
		Type:               reaperv1alpha1.ConditionReady,
		Status:             metav1.ConditionFalse,
		Reason:             reaperv1alpha1.ReasonWaiting,
		ObservedGeneration: reaperNode.Generation,
	}
	switch {
	case reaperNode.DeletionTimestamp != nil || reaperNode.Status.Phase == reaperv1alpha1.PhaseUninstalling:
		ready.Reason = reaperv1alpha1.ReasonUninstalling
		ready.Message = fmt.Sprintf("the ReaperNode is being deleted and label %s is removed from the Node", reaperv1alpha1.ReadyLabel)
	case reaperNode.Status.Phase != reaperv1alpha1.PhaseReady:
		ready.Message = fmt.Sprintf("waiting for the agent to report phase Ready; the phase is %q", reaperNode.Status.Phase)
	case !isAdvertised:
		ready.Message = fmt.Sprintf("waiting for condition %s", reaperv1alpha1.ConditionHandlerAdvertised)
	default:
		ready.Status = metav1.ConditionTrue
		ready.Reason = reaperv1alpha1.ReasonSucceeded
		ready.Message = fmt.Sprintf("the Node is labeled %s=true, so pods of the Reaper RuntimeClasses can run on it", reaperv1alpha1.ReadyLabel)
	}
	return []metav1.Condition{advertised, ready}
}

// sameConditions reports whether current has each of want with the same status, reason,
// message and observed generation.
func sameConditions(current, want []metav1.Condition) bool {
	for _, w := range want {
		c := meta.FindStatusCondition(current, w.Type)
		if c == nil || c.Status != w.Status || c.Reason != w.Reason || c.Message != w.Message || c.ObservedGeneration != w.ObservedGeneration {
			return false
		}
	}
	return true
}

// statusApplyConfiguration returns a server-side apply request for the status of the
// ReaperNode name. ReaperNode has no generated apply configuration, so the request is
// unstructured.
func statusApplyConfiguration(name string, status map[string]any) (runtime.ApplyConfiguration, error) {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	if err := roundTrip(map[string]any{"status": status}, &u.Object); err != nil {
		return nil, fmt.Errorf("encode the status of ReaperNode %s: %w", name, err)
	}
	u.SetAPIVersion(reaperv1alpha1.GroupVersion.String())
	u.SetKind("ReaperNode")
	u.SetName(name)
	return client.ApplyConfigurationFromUnstructured(u), nil
}

// rawMergePatch returns a JSON merge patch of patch, which is plain JSON data.
func rawMergePatch(patch map[string]any) client.Patch {
	data, err := json.Marshal(patch)
	if err != nil {
		// patch holds only maps, strings and nils, which always encode.
		panic(fmt.Sprintf("encode merge patch %v: %v", patch, err))
	}
	return client.RawPatch(types.MergePatchType, data)
}
