package agent

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
)

// installingStatus returns the node's status with phase Installing. A condition the
// agent has not reported yet is Unknown with reason InProgress.
func installingStatus(node *reaperv1alpha1.ReaperNode) reaperv1alpha1.ReaperNodeStatus {
	status := agentStatus(node.Status)
	status.Phase = reaperv1alpha1.PhaseInstalling
	for _, conditionType := range agentConditions {
		if meta.FindStatusCondition(status.Conditions, conditionType) == nil {
			status.Conditions = append(status.Conditions, metav1.Condition{Type: conditionType, Status: metav1.ConditionUnknown,
				Reason: reaperv1alpha1.ReasonInProgress, Message: "the agent is installing Reaper on the node"})
		}
	}
	return status
}

// uninstallingStatus returns the node's status with phase Uninstalling and each agent
// condition False with the reason and the message.
func uninstallingStatus(node *reaperv1alpha1.ReaperNode, reason, message string) reaperv1alpha1.ReaperNodeStatus {
	status := agentStatus(node.Status)
	status.Phase = reaperv1alpha1.PhaseUninstalling
	status.Conditions = nil
	for _, conditionType := range agentConditions {
		status.Conditions = append(status.Conditions, metav1.Condition{Type: conditionType, Status: metav1.ConditionFalse,
			Reason: reason, Message: message})
	}
	return status
}

// agentStatus returns the fields of status that the agent owns.
func agentStatus(status reaperv1alpha1.ReaperNodeStatus) reaperv1alpha1.ReaperNodeStatus {
	owned := *status.DeepCopy()
	owned.Conditions = slices.DeleteFunc(owned.Conditions, func(c metav1.Condition) bool { return !slices.Contains(agentConditions, c.Type) })
	return owned
}

// applyStatus writes the agent's fields of the status with server-side apply, unless the
// ReaperNode already has them. A condition keeps its lastTransitionTime while its status
// stays, and a success message that only loses its repair note keeps the note. On
// success node holds the object the API server returned.
func (r *Reconciler) applyStatus(ctx context.Context, node *reaperv1alpha1.ReaperNode, status reaperv1alpha1.ReaperNodeStatus) error {
	current := agentStatus(node.Status)
	for i := range status.Conditions {
		c := &status.Conditions[i]
		c.ObservedGeneration = node.Generation
		c.LastTransitionTime = metav1.Now()
		previous := meta.FindStatusCondition(current.Conditions, c.Type)
		if previous == nil || previous.Status != c.Status {
			continue
		}
		c.LastTransitionTime = previous.LastTransitionTime
		if c.Status == metav1.ConditionTrue && c.Reason == previous.Reason && strings.HasPrefix(previous.Message, c.Message+"; ") {
			c.Message = previous.Message
		}
	}
	if sameStatus(current, status) {
		return nil
	}

	fields, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&status)
	if err != nil {
		return fmt.Errorf("encode the status of ReaperNode %s: %w", node.Name, err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": reaperv1alpha1.GroupVersion.String(),
		"kind":       "ReaperNode",
		"metadata":   map[string]any{"name": node.Name},
		"status":     fields,
	}}
	err = r.Client.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldManager), client.ForceOwnership)
	if err != nil {
		return fmt.Errorf("apply the status of ReaperNode %s: %w", node.Name, err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, node); err != nil {
		return fmt.Errorf("decode ReaperNode %s: %w", node.Name, err)
	}
	return nil
}

// sameStatus reports whether two agent statuses have the same fields, whatever the order
// of their conditions.
func sameStatus(a, b reaperv1alpha1.ReaperNodeStatus) bool {
	byType := func(x, y metav1.Condition) int { return strings.Compare(x.Type, y.Type) }
	a.Conditions, b.Conditions = slices.Clone(a.Conditions), slices.Clone(b.Conditions)
	slices.SortFunc(a.Conditions, byType)
	slices.SortFunc(b.Conditions, byType)
	for i := range a.Conditions {
		a.Conditions[i].LastTransitionTime = metav1.NewTime(a.Conditions[i].LastTransitionTime.Rfc3339Copy().Time)
	}
	for i := range b.Conditions {
		b.Conditions[i].LastTransitionTime = metav1.NewTime(b.Conditions[i].LastTransitionTime.Rfc3339Copy().Time)
	}
	return reflect.DeepEqual(a, b)
}

// maxNote is the limit of an event's note in events.k8s.io/v1.
const maxNote = 1024

// truncate shortens text to fit an event's note.
func truncate(text string) string {
	if len(text) <= maxNote-100 {
		return text
	}
	return text[:maxNote-100] + "..."
}

// listOrNone joins values, or returns "no handler" for none.
func listOrNone(values []string) string {
	if len(values) == 0 {
		return "no handler"
	}
	return strings.Join(values, ", ")
}
