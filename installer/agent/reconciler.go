package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
)

// Event reasons of the agent, beside the condition reasons it also uses for events.
const (
	EventInstalled   = "Installed"
	EventRepaired    = "Repaired"
	EventUninstalled = "Uninstalled"
	// EventUninstallFailed means that reverting the node failed; the agent retries.
	EventUninstallFailed = "UninstallFailed"
	// EventUninstallWaitTimedOut means that the controller did not set Ready to False
	// within Options.UninstallWait, and the agent reverts the node anyway.
	EventUninstallWaitTimedOut = "UninstallWaitTimedOut"
	// EventUninstallWaitingForPods means that pods of Reaper's handlers still run on the
	// node, so the agent waits for them to end before it reverts the node.
	EventUninstallWaitingForPods = "UninstallWaitingForPods"
)

// Reconciler installs Reaper on its node, keeps it there and reverts it when its
// ReaperNode is deleted.
type Reconciler struct {
	Client client.Client
	// Reader reads the ReaperNode from the API server rather than the cache, so a pass
	// never compares its report with a status older than the last one it wrote.
	Reader   client.Reader
	Recorder events.EventRecorder
	Options  Options
}

// Reconcile brings the node to the state its ReaperNode requests and reports the result in
// the ReaperNode's status. It returns RequeueAfter the resync period, so a config
// manager that removes Reaper's files is noticed and repaired, and an error, retried
// with backoff, when the install or the uninstall failed.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if req.Name != r.Options.NodeName {
		return ctrl.Result{}, nil
	}
	node := &reaperv1alpha1.ReaperNode{}
	if err := r.Reader.Get(ctx, req.NamespacedName, node); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}

	switch {
	case !node.DeletionTimestamp.IsZero():
		return r.reconcileDelete(ctx, node)
	case node.Spec.Paused:
		return r.reconcilePaused(ctx, node)
	}
	return r.reconcileInstall(ctx, node)
}

// reconcileInstall adds the finalizer, then installs or repairs Reaper when the host
// differs from the plan, and reports what it finds.
func (r *Reconciler) reconcileInstall(ctx context.Context, node *reaperv1alpha1.ReaperNode) (ctrl.Result, error) {
	if err := r.addFinalizer(ctx, node); err != nil {
		return ctrl.Result{}, err
	}

	run, err := r.newRun(node)
	if err != nil {
		return ctrl.Result{}, r.reportFailure(ctx, run, err)
	}
	unlock, err := run.lock(ctx)
	if err != nil {
		return ctrl.Result{}, r.reportFailure(ctx, run, err)
	}
	defer unlock()

	if err := r.install(ctx, run); err != nil {
		return ctrl.Result{}, r.reportFailure(ctx, run, err)
	}
	if err := r.reportInstall(ctx, run); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: r.Options.ResyncPeriod}, nil
}

// reconcilePaused changes nothing on the host and reports what it finds there, each
// agent condition with reason Paused.
func (r *Reconciler) reconcilePaused(ctx context.Context, node *reaperv1alpha1.ReaperNode) (ctrl.Result, error) {
	run, err := r.newRun(node)
	if err != nil {
		return ctrl.Result{}, r.reportFailure(ctx, run, err)
	}
	run.inspect(ctx)

	status := r.statusFrom(run, nil)
	note := "spec.paused is true, so the agent changes nothing on the node"
	if !node.DeletionTimestamp.IsZero() {
		note += " and does not revert it; set spec.paused to false to finish the deletion"
	}
	for i := range status.Conditions {
		status.Conditions[i].Reason = reaperv1alpha1.ReasonPaused
		status.Conditions[i].Message = note + ": " + status.Conditions[i].Message
	}
	if !node.DeletionTimestamp.IsZero() || run.status == nil || run.status.Record == "" {
		// During a deletion, or with nothing installed, the phase stays as the last pass
		// left it: a paused deletion must not turn Uninstalling back into Ready.
		status.Phase = node.Status.Phase
	}
	status.ObservedGeneration = node.Status.ObservedGeneration
	return ctrl.Result{RequeueAfter: r.Options.ResyncPeriod}, r.applyStatus(ctx, node, status)
}

// addFinalizer puts the agent's finalizer on the ReaperNode before the agent changes the
// host, so deleting the ReaperNode waits for the agent to revert the node.
func (r *Reconciler) addFinalizer(ctx context.Context, node *reaperv1alpha1.ReaperNode) error {
	if controllerutil.ContainsFinalizer(node, reaperv1alpha1.AgentFinalizer) {
		return nil
	}
	base := node.DeepCopy()
	controllerutil.AddFinalizer(node, reaperv1alpha1.AgentFinalizer)
	if err := r.Client.Patch(ctx, node, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("add the finalizer %s to ReaperNode %s: %w", reaperv1alpha1.AgentFinalizer, node.Name, err)
	}
	return nil
}

// removeFinalizer lets the deletion of the ReaperNode finish.
func (r *Reconciler) removeFinalizer(ctx context.Context, node *reaperv1alpha1.ReaperNode) error {
	base := node.DeepCopy()
	controllerutil.RemoveFinalizer(node, reaperv1alpha1.AgentFinalizer)
	if err := r.Client.Patch(ctx, node, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("remove the finalizer %s from ReaperNode %s: %w", reaperv1alpha1.AgentFinalizer, node.Name, err)
	}
	return nil
}

// reportInstall writes the status after a successful install or check, and records an
// event for an install or a repair.
func (r *Reconciler) reportInstall(ctx context.Context, run *run) error {
	status := r.statusFrom(run, nil)
	if status.Phase == reaperv1alpha1.PhaseReady {
		status.ObservedGeneration = run.node.Generation
	} else {
		status.ObservedGeneration = run.node.Status.ObservedGeneration
	}

	switch {
	case run.changed && len(run.drift) > 0:
		r.event(run.node, corev1.EventTypeNormal, EventRepaired, "Repair",
			"Repaired the drift on node %s: %s", run.node.Name, strings.Join(run.drift, "; "))
	case run.changed:
		r.event(run.node, corev1.EventTypeNormal, EventInstalled, "Install",
			"Installed Reaper %s on node %s with the runtime handlers %s", r.Options.Version, run.node.Name, strings.Join(run.handlers(), ", "))
	}
	return r.applyStatus(ctx, run.node, status)
}

// reportFailure writes the status of a failed install and records an event. It returns
// the failure, so the request is retried with backoff.
func (r *Reconciler) reportFailure(ctx context.Context, run *run, err error) error {
	f := classify(err)
	r.event(run.node, corev1.EventTypeWarning, f.reason, "Install", "Installing Reaper on node %s failed: %s", run.node.Name, truncate(err.Error()))

	if run.host != nil && run.status == nil && run.statusErr == nil {
		run.inspect(ctx)
	}
	status := r.statusFrom(run, &f)
	status.ObservedGeneration = run.node.Status.ObservedGeneration
	if writeErr := r.applyStatus(ctx, run.node, status); writeErr != nil {
		return fmt.Errorf("%w; reporting it failed too: %w", err, writeErr)
	}
	return err
}

// event records an event about the ReaperNode.
func (r *Reconciler) event(node *reaperv1alpha1.ReaperNode, eventType, reason, action, note string, args ...any) {
	r.Recorder.Eventf(node, nil, eventType, reason, action, note, args...)
}

// slogger returns a slog logger that writes to the context's logr logger, for the
// installer package.
func slogger(ctx context.Context) *slog.Logger {
	return slog.New(logr.ToSlogHandler(ctrl.LoggerFrom(ctx)))
}
