package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
)

// Event reasons of the Node reconciler.
const (
	// EventReaperNodeCreated: the Node is selected and got its ReaperNode.
	EventReaperNodeCreated = "ReaperNodeCreated"
	// EventReaperNodeDeleted: the Node is no longer selected, so its ReaperNode is
	// deleted and its agent reverts the node.
	EventReaperNodeDeleted = "ReaperNodeDeleted"
	// EventNodeReady: the ready label is set, so pods of the RuntimeClasses can be
	// scheduled on the node.
	EventNodeReady = "NodeReady"
	// EventNodeNotReady: the ready label is removed.
	EventNodeNotReady = "NodeNotReady"
	// EventAgentLabelRemoved: the node's ReaperNode is gone, so the agent leaves the node.
	EventAgentLabelRemoved = "AgentLabelRemoved"
)

// osLabel is the well-known Node label with the node's operating system.
const osLabel = "kubernetes.io/os"

// NodeReconciler keeps one ReaperNode per selected Linux Node, the agent and ready
// labels of each Node, and the controller's conditions of each ReaperNode. Its requests
// are named after the Node, which is also the ReaperNode's name.
type NodeReconciler struct {
	Client   client.Client
	Config   Config
	Recorder events.EventRecorder
	// Workers is how many Nodes are reconciled at once; 0 means 1.
	Workers int
}

// SetupWithManager watches Nodes and ReaperNodes. Predicates drop the updates that
// cannot change the outcome, such as a kubelet's heartbeat.
func (r *NodeReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("node").
		For(&corev1.Node{}, builder.WithPredicates(nodeChanged())).
		Watches(&reaperv1alpha1.ReaperNode{}, reaperNodeOwner(), builder.WithPredicates(reaperNodeChanged())).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.Workers, 1)}).
		Complete(r)
}

// Reconcile brings the Node named in req, its ReaperNode and its labels in line with the
// config, in this order: the ReaperNode, the labels, then the ReaperNode's conditions.
// The ready label goes before the Ready condition turns False, because an agent that
// uninstalls waits for that condition.
func (r *NodeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	node := &corev1.Node{}
	if err := r.Client.Get(ctx, req.NamespacedName, node); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("get Node %s: %w", req.Name, err)
		}
		node = nil
	}
	reaperNode := &reaperv1alpha1.ReaperNode{}
	if err := r.Client.Get(ctx, req.NamespacedName, reaperNode); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("get ReaperNode %s: %w", req.Name, err)
		}
		reaperNode = nil
	}

	if node == nil {
		return ctrl.Result{}, r.forgetNode(ctx, reaperNode)
	}

	selected := r.selects(node)
	reaperNode, err := r.syncReaperNode(ctx, node, reaperNode, selected)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.syncLabels(ctx, node, reaperNode, selected); err != nil {
		return ctrl.Result{}, err
	}
	if reaperNode == nil {
		return ctrl.Result{}, nil
	}
	if err := r.syncStatus(ctx, node, reaperNode); err != nil {
		if apierrors.IsConflict(err) {
			// The cache lags behind the agent's write, so try again shortly.
			ctrl.LoggerFrom(ctx).V(1).Info("Retrying after a conflict", "error", err.Error())
			return ctrl.Result{RequeueAfter: conflictRetry}, nil
		}
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

// conflictRetry is the delay before a request that hit a conflict runs again.
const conflictRetry = 200 * time.Millisecond

// selects reports whether node should run Reaper: a Linux Node, not being deleted, that
// carries every label of the config's node selector.
func (r *NodeReconciler) selects(node *corev1.Node) bool {
	if node.DeletionTimestamp != nil || node.Labels[osLabel] != "linux" {
		return false
	}
	return labels.SelectorFromSet(r.Config.NodeSelector).Matches(labels.Set(node.Labels))
}

// forgetNode removes what is left of a Node that is gone: nothing remains to revert, so
// the agent's finalizer goes too. The cluster's garbage collector would delete the
// ReaperNode through its owner reference, but never past the finalizer.
func (r *NodeReconciler) forgetNode(ctx context.Context, reaperNode *reaperv1alpha1.ReaperNode) error {
	if reaperNode == nil {
		return nil
	}
	log := ctrl.LoggerFrom(ctx)

	if controllerutil.ContainsFinalizer(reaperNode, reaperv1alpha1.AgentFinalizer) {
		patch := client.MergeFromWithOptions(reaperNode.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.RemoveFinalizer(reaperNode, reaperv1alpha1.AgentFinalizer)
		err := r.Client.Patch(ctx, reaperNode, patch, client.FieldOwner(FieldManager))
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("remove finalizer %s from ReaperNode %s of a deleted Node: %w",
				reaperv1alpha1.AgentFinalizer, reaperNode.Name, err)
		}
		log.Info("Removed the agent's finalizer, because the Node is gone", "reaperNode", klog.KObj(reaperNode))
	}
	if reaperNode.DeletionTimestamp == nil {
		if err := r.Client.Delete(ctx, reaperNode); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete ReaperNode %s of a deleted Node: %w", reaperNode.Name, err)
		}
		log.Info("Deleted the ReaperNode, because the Node is gone", "reaperNode", klog.KObj(reaperNode))
	}
	return nil
}

// syncReaperNode creates the ReaperNode of a selected Node, and deletes the ReaperNode of
// a Node that is no longer selected. It returns the ReaperNode, or nil when there is none.
func (r *NodeReconciler) syncReaperNode(ctx context.Context, node *corev1.Node, reaperNode *reaperv1alpha1.ReaperNode, selected bool) (*reaperv1alpha1.ReaperNode, error) {
	log := ctrl.LoggerFrom(ctx)
	switch {
	case selected && reaperNode == nil:
		created, err := r.createReaperNode(ctx, node)
		if err != nil || created == nil {
			return created, err
		}
		log.Info("Created the ReaperNode of a selected Node", "reaperNode", klog.KObj(created))
		r.Recorder.Eventf(created, node, corev1.EventTypeNormal, EventReaperNodeCreated, "Create",
			"Node %s is selected, so Reaper's agent installs the runtime on it", node.Name)
		return created, nil

	case !selected && reaperNode != nil && reaperNode.DeletionTimestamp == nil:
		err := r.Client.Delete(ctx, reaperNode, client.Preconditions{UID: &reaperNode.UID})
		if client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("delete ReaperNode %s of a deselected Node: %w", reaperNode.Name, err)
		}
		log.Info("Deleted the ReaperNode of a deselected Node", "reaperNode", klog.KObj(reaperNode))
		r.Recorder.Eventf(reaperNode, node, corev1.EventTypeNormal, EventReaperNodeDeleted, "Delete",
			"Node %s is no longer selected, so Reaper's agent reverts it", node.Name)
		now := metav1.Now()
		reaperNode.DeletionTimestamp = &now
		return reaperNode, nil
	}
	return reaperNode, nil
}

// createReaperNode creates the ReaperNode of node, owned by the Node. It returns nil when
// the ReaperNode already exists, because the cache lags behind the create of an earlier
// pass. The watch on ReaperNodes then brings the Node back.
func (r *NodeReconciler) createReaperNode(ctx context.Context, node *corev1.Node) (*reaperv1alpha1.ReaperNode, error) {
	reaperNode := &reaperv1alpha1.ReaperNode{
		ObjectMeta: metav1.ObjectMeta{
			Name: node.Name,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1",
				Kind:       "Node",
				Name:       node.Name,
				UID:        node.UID,
			}},
		},
	}
	if err := r.Client.Create(ctx, reaperNode, client.FieldOwner(FieldManager)); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("create ReaperNode %s: %w", node.Name, err)
	}
	return reaperNode, nil
}

// syncLabels sets or removes the agent and ready labels of node. The agent label stays
// while the ReaperNode exists, so the agent runs until it has reverted the node.
func (r *NodeReconciler) syncLabels(ctx context.Context, node *corev1.Node, reaperNode *reaperv1alpha1.ReaperNode, selected bool) error {
	wantAgent := selected || reaperNode != nil
	wantReady := selected && reaperNode != nil && nodeIsReady(reaperNode, advertises(node, r.Config.RuntimeClasses.Handler))

	changes := map[string]any{}
	if hasTrueLabel(node, reaperv1alpha1.AgentLabel) != wantAgent {
		changes[reaperv1alpha1.AgentLabel] = labelValue(wantAgent)
	}
	if hasTrueLabel(node, reaperv1alpha1.ReadyLabel) != wantReady {
		changes[reaperv1alpha1.ReadyLabel] = labelValue(wantReady)
	}
	if len(changes) == 0 {
		return nil
	}

	patch := map[string]any{"metadata": map[string]any{"labels": changes}}
	if err := r.Client.Patch(ctx, node, rawMergePatch(patch), client.FieldOwner(FieldManager)); err != nil {
		return fmt.Errorf("set labels %v on Node %s: %w", changes, node.Name, err)
	}
	r.reportLabels(ctx, node, reaperNode, changes)
	return nil
}

// reportLabels logs the label changes and records an Event for each. The Events go to
// the ReaperNode, and to the Node when there is none.
func (r *NodeReconciler) reportLabels(ctx context.Context, node *corev1.Node, reaperNode *reaperv1alpha1.ReaperNode, changes map[string]any) {
	log := ctrl.LoggerFrom(ctx)
	log.Info("Changed the labels of the Node", "node", klog.KObj(node), "labels", changes)

	var regarding, related client.Object = node, nil
	if reaperNode != nil {
		regarding, related = reaperNode, node
	}
	if value, ok := changes[reaperv1alpha1.ReadyLabel]; ok {
		if value != nil {
			r.Recorder.Eventf(regarding, related, corev1.EventTypeNormal, EventNodeReady, "Label",
				"Node %s advertises handler %s and its agent reports Ready, so it is labeled %s=true",
				node.Name, r.Config.RuntimeClasses.Handler, reaperv1alpha1.ReadyLabel)
		} else {
			r.Recorder.Eventf(regarding, related, corev1.EventTypeNormal, EventNodeNotReady, "Unlabel",
				"Removed label %s from Node %s: %s", reaperv1alpha1.ReadyLabel, node.Name, notReadyReason(reaperNode))
		}
	}
	if value, ok := changes[reaperv1alpha1.AgentLabel]; ok && value == nil {
		r.Recorder.Eventf(node, nil, corev1.EventTypeNormal, EventAgentLabelRemoved, "Unlabel",
			"The ReaperNode of Node %s is gone, so its agent stops", node.Name)
	}
}

// advertises reports whether the Node's status.runtimeHandlers, which the kubelet fills
// from containerd's CRI status, lists handler.
func advertises(node *corev1.Node, handler string) bool {
	return slices.ContainsFunc(node.Status.RuntimeHandlers, func(h corev1.NodeRuntimeHandler) bool {
		return h.Name == handler
	})
}

// nodeIsReady reports whether pods of the Reaper RuntimeClasses can run on the node of
// reaperNode: the agent reports phase Ready and the Node advertises the handler.
func nodeIsReady(reaperNode *reaperv1alpha1.ReaperNode, advertised bool) bool {
	return reaperNode.DeletionTimestamp == nil && reaperNode.Status.Phase == reaperv1alpha1.PhaseReady && advertised
}

func notReadyReason(reaperNode *reaperv1alpha1.ReaperNode) string {
	switch {
	case reaperNode == nil:
		return "the Node has no ReaperNode"
	case reaperNode.DeletionTimestamp != nil:
		return "its ReaperNode is being deleted"
	case reaperNode.Status.Phase != reaperv1alpha1.PhaseReady:
		return fmt.Sprintf("its ReaperNode is in phase %q", reaperNode.Status.Phase)
	default:
		return "the Node's status.runtimeHandlers does not list the handler"
	}
}

func hasTrueLabel(obj client.Object, key string) bool {
	return obj.GetLabels()[key] == "true"
}

// labelValue returns the merge-patch value that sets a label to "true", or removes it.
func labelValue(set bool) any {
	if set {
		return "true"
	}
	return nil
}
