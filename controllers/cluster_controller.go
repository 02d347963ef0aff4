package controllers

import (
	"context"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	admissionv1ac "k8s.io/client-go/applyconfigurations/admissionregistration/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	nodev1ac "k8s.io/client-go/applyconfigurations/node/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// clusterRequest is the one request of the cluster reconciler: it keeps every
// cluster-wide object at once.
var clusterRequest = reconcile.Request{NamespacedName: types.NamespacedName{Name: "reaper"}}

// ClusterReconciler keeps the cluster-wide objects of the config: the installer
// DaemonSet, the RuntimeClasses and the admission policies with their bindings. It
// writes an object only when it is missing or a field that the controller owns differs
// from the config, such as after a user's edit.
type ClusterReconciler struct {
	Client client.Client
	Config Config
}

// ensurer keeps one object.
type ensurer interface {
	ensure(ctx context.Context, c client.Client) (bool, error)
}

// SetupWithManager watches the kept objects and reconciles once at start, when none of
// them may exist yet.
func (r *ClusterReconciler) SetupWithManager(mgr ctrl.Manager) error {
	toCluster := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{clusterRequest}
	})
	// Status updates, such as a DaemonSet's pod counts, change no kept field. RuntimeClasses
	// and bindings have no status, so every update of theirs passes; an edit of a
	// RuntimeClass does not change its generation (kube-apiserver v1.37.2).
	specOrMetadata := builder.WithPredicates(predicate.Or(
		predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{}))

	start := make(chan event.GenericEvent, 1)
	start <- event.GenericEvent{Object: &appsv1.DaemonSet{}}

	return ctrl.NewControllerManagedBy(mgr).
		Named("cluster").
		WatchesRawSource(source.Channel(start, toCluster)).
		Watches(&appsv1.DaemonSet{}, toCluster, specOrMetadata).
		Watches(&nodev1.RuntimeClass{}, toCluster).
		Watches(&admissionregistrationv1.ValidatingAdmissionPolicy{}, toCluster, specOrMetadata).
		Watches(&admissionregistrationv1.ValidatingAdmissionPolicyBinding{}, toCluster).
		Complete(r)
}

// Reconcile brings every kept object in line with the config.
func (r *ClusterReconciler) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)

	if err := r.replaceChangedHandlers(ctx); err != nil {
		return ctrl.Result{}, err
	}
	for name, kept := range r.keptObjects() {
		wrote, err := kept.ensure(ctx, r.Client)
		if err != nil {
			return ctrl.Result{}, err
		}
		if wrote {
			log.Info("Applied the config to a kept object", "object", name)
		}
	}

	if !*r.Config.Admission.Enabled {
		for _, obj := range runtimeClassPolicyObjects(r.Config) {
			deleted, err := deleteIfPresent(ctx, r.Client, obj)
			if err != nil {
				return ctrl.Result{}, err
			}
			if deleted {
				log.Info("Deleted the admission policy, because admission.enabled is false", "name", obj.GetName())
			}
		}
	}
	return ctrl.Result{}, nil
}

// keptObjects returns the objects of the config, by a name for the logs.
func (r *ClusterReconciler) keptObjects() map[string]ensurer {
	cfg := r.Config
	objects := map[string]ensurer{
		"DaemonSet " + cfg.Namespace + "/" + cfg.Agent.Name: keptObject[appsv1.DaemonSet, *appsv1.DaemonSet, *appsv1ac.DaemonSetApplyConfiguration]{
			key: client.ObjectKey{Namespace: cfg.Namespace, Name: cfg.Agent.Name}, desired: agentDaemonSet(cfg), extract: appsv1ac.ExtractDaemonSet,
		},
		"ValidatingAdmissionPolicy " + cfg.Admission.AgentPolicyName:        keptPolicy(agentPolicy(cfg)),
		"ValidatingAdmissionPolicyBinding " + cfg.Admission.AgentPolicyName: keptBinding(policyBinding(cfg.Admission.AgentPolicyName)),
	}
	for name, handler := range r.runtimeClasses() {
		objects["RuntimeClass "+name] = keptObject[nodev1.RuntimeClass, *nodev1.RuntimeClass, *nodev1ac.RuntimeClassApplyConfiguration]{
			key: client.ObjectKey{Name: name}, desired: runtimeClass(name, handler), extract: nodev1ac.ExtractRuntimeClass,
		}
	}
	if *cfg.Admission.Enabled {
		objects["ValidatingAdmissionPolicy "+cfg.Admission.PolicyName] = keptPolicy(runtimeClassPolicy(cfg))
		objects["ValidatingAdmissionPolicyBinding "+cfg.Admission.PolicyName] = keptBinding(policyBinding(cfg.Admission.PolicyName))
	}
	return objects
}

// runtimeClasses returns the handler of each RuntimeClass that the config keeps, by name.
func (r *ClusterReconciler) runtimeClasses() map[string]string {
	classes := map[string]string{r.Config.RuntimeClasses.Name: r.Config.RuntimeClasses.Handler}
	if p := *r.Config.RuntimeClasses.ProtectedName; p != "" {
		classes[p] = r.Config.RuntimeClasses.ProtectedHandler
	}
	return classes
}

// replaceChangedHandlers deletes a kept RuntimeClass whose handler differs from the
// config, because a RuntimeClass's handler cannot change; the apply that follows
// creates it again.
func (r *ClusterReconciler) replaceChangedHandlers(ctx context.Context) error {
	for name, handler := range r.runtimeClasses() {
		current := &nodev1.RuntimeClass{}
		if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, current); err != nil {
			if client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("get RuntimeClass %s: %w", name, err)
			}
			continue
		}
		if current.Handler == handler {
			continue
		}
		if err := r.Client.Delete(ctx, current, client.Preconditions{UID: &current.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete RuntimeClass %s, whose handler %s is not the configured %s: %w", name, current.Handler, handler, err)
		}
		ctrl.LoggerFrom(ctx).Info("Deleted a RuntimeClass to change its handler", "name", name, "from", current.Handler, "to", handler)
	}
	return nil
}

func keptPolicy(desired *admissionv1ac.ValidatingAdmissionPolicyApplyConfiguration) ensurer {
	return keptObject[admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicy, *admissionv1ac.ValidatingAdmissionPolicyApplyConfiguration]{
		key: client.ObjectKey{Name: *desired.Name}, desired: desired, extract: admissionv1ac.ExtractValidatingAdmissionPolicy,
	}
}

func keptBinding(desired *admissionv1ac.ValidatingAdmissionPolicyBindingApplyConfiguration) ensurer {
	return keptObject[admissionregistrationv1.ValidatingAdmissionPolicyBinding, *admissionregistrationv1.ValidatingAdmissionPolicyBinding, *admissionv1ac.ValidatingAdmissionPolicyBindingApplyConfiguration]{
		key: client.ObjectKey{Name: *desired.Name}, desired: desired, extract: admissionv1ac.ExtractValidatingAdmissionPolicyBinding,
	}
}

// runtimeClassPolicyObjects returns the runtime-class policy and its binding, by name.
func runtimeClassPolicyObjects(cfg Config) []client.Object {
	meta := metav1.ObjectMeta{Name: cfg.Admission.PolicyName}
	return []client.Object{
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: meta},
		&admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: meta},
	}
}
