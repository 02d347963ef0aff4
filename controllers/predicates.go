package controllers

import (
	"context"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
)

// nodeChanged passes the Node updates that the Node reconciler acts on: labels,
// status.runtimeHandlers and deletion. A kubelet's heartbeats change none of them.
func nodeChanged() predicate.Predicate {
	return predicate.TypedFuncs[client.Object]{
		UpdateFunc: func(e event.TypedUpdateEvent[client.Object]) bool {
			oldNode, okOld := e.ObjectOld.(*corev1.Node)
			newNode, okNew := e.ObjectNew.(*corev1.Node)
			if !okOld || !okNew {
				return true
			}
			return !maps.Equal(oldNode.Labels, newNode.Labels) ||
				!equality.Semantic.DeepEqual(oldNode.Status.RuntimeHandlers, newNode.Status.RuntimeHandlers) ||
				!oldNode.DeletionTimestamp.Equal(newNode.DeletionTimestamp)
		},
	}
}

// reaperNodeChanged passes the ReaperNode updates that the Node reconciler acts on:
// status, finalizers, owners and deletion.
func reaperNodeChanged() predicate.Predicate {
	return predicate.TypedFuncs[client.Object]{
		UpdateFunc: func(e event.TypedUpdateEvent[client.Object]) bool {
			oldNode, okOld := e.ObjectOld.(*reaperv1alpha1.ReaperNode)
			newNode, okNew := e.ObjectNew.(*reaperv1alpha1.ReaperNode)
			if !okOld || !okNew {
				return true
			}
			return oldNode.Generation != newNode.Generation ||
				!equality.Semantic.DeepEqual(oldNode.Status, newNode.Status) ||
				!slices.Equal(oldNode.Finalizers, newNode.Finalizers) ||
				!equality.Semantic.DeepEqual(oldNode.OwnerReferences, newNode.OwnerReferences) ||
				!oldNode.DeletionTimestamp.Equal(newNode.DeletionTimestamp)
		},
	}
}

// reaperNodeOwner maps a ReaperNode to the request of its Node, which has the same name.
func reaperNodeOwner() handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: obj.GetName()}}}
	})
}
