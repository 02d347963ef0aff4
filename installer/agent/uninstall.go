package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
	"reaper.dev/reaper/installer"
)

// uninstallingMessage is the message of the agent's conditions while it reverts the node.
const uninstallingMessage = "the ReaperNode is being deleted, so the agent reverts the node"

const (
	// podsRecheckInterval is how often the agent checks again whether the pods that hold up
	// an uninstall have ended.
	podsRecheckInterval = 5 * time.Second
	// maxNamedPods is how many of those pods the status message names.
	maxNamedPods = 5
)

// reconcileDelete reverts the node of a ReaperNode being deleted and then removes the
// agent's finalizer. It sets the phase Uninstalling first and waits, at most
// Options.UninstallWait after the deletion started, until the controller has set the
// condition Ready to False, so no pod is scheduled onto a node that loses the handler.
// Then it waits, without a limit, until no pod of Reaper's handlers runs on the node.
func (r *Reconciler) reconcileDelete(ctx context.Context, node *reaperv1alpha1.ReaperNode) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(node, reaperv1alpha1.AgentFinalizer) {
		return ctrl.Result{}, nil
	}
	if node.Spec.Paused {
		return r.reconcilePaused(ctx, node)
	}
	if node.Status.Phase != reaperv1alpha1.PhaseUninstalling {
		if err := r.applyStatus(ctx, node, uninstallingStatus(node, reaperv1alpha1.ReasonUninstalling, uninstallingMessage)); err != nil {
			return ctrl.Result{}, err
		}
	}
	if wait := r.readyWait(ctx, node); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	if pods := r.runningPods(ctx, node); len(pods) > 0 {
		return r.waitForPods(ctx, node, pods)
	}

	if err := r.uninstall(ctx, node); err != nil {
		r.event(node, corev1.EventTypeWarning, EventUninstallFailed, "Uninstall", "Reverting node %s failed, and the agent retries: %s", node.Name, truncate(err.Error()))
		status := uninstallingStatus(node, reaperv1alpha1.ReasonUninstalling, "reverting the node failed, and the agent retries: "+err.Error())
		if writeErr := r.applyStatus(ctx, node, status); writeErr != nil {
			ctrl.LoggerFrom(ctx).Error(writeErr, "Reporting the failed uninstall failed")
		}
		return ctrl.Result{}, err
	}

	r.event(node, corev1.EventTypeNormal, EventUninstalled, "Uninstall", "Reverted node %s: containerd's config is as before the install and the binaries are removed", node.Name)
	return ctrl.Result{}, r.removeFinalizer(ctx, node)
}

// readyWait returns how long to wait for the controller's Ready=False condition, or 0
// when it is there or the wait is over.
func (r *Reconciler) readyWait(ctx context.Context, node *reaperv1alpha1.ReaperNode) time.Duration {
	ready := meta.FindStatusCondition(node.Status.Conditions, reaperv1alpha1.ConditionReady)
	if ready != nil && ready.Status == metav1.ConditionFalse && ready.Reason == reaperv1alpha1.ReasonUninstalling {
		return 0
	}

	remaining := time.Until(node.DeletionTimestamp.Add(r.Options.UninstallWait))
	if remaining > 0 {
		ctrl.LoggerFrom(ctx).Info("Waiting for the controller to set Ready to False before reverting the node", "remaining", remaining.Round(time.Second))
		return remaining
	}
	ctrl.LoggerFrom(ctx).Info("The controller did not set Ready to False in time; reverting the node anyway", "waited", r.Options.UninstallWait)
	r.event(node, corev1.EventTypeWarning, EventUninstallWaitTimedOut, "Uninstall",
		"The controller did not set Ready to False within %s, so the agent reverts node %s while pods may still be scheduled onto it", r.Options.UninstallWait, node.Name)
	return 0
}

// runningPods returns the pods of Reaper's handlers that run on the node. Reverting the node
// under them would leave their processes running while the restarted containerd, without the
// handler, no longer finds their containers, so kubectl exec into them fails. A node whose
// containerd is unreachable does not hold up the uninstall.
func (r *Reconciler) runningPods(ctx context.Context, node *reaperv1alpha1.ReaperNode) []installer.PodSandbox {
	run, err := r.newRun(node)
	if err != nil {
		return nil
	}
	// The record names the handlers that the install registered, which the flags or the
	// spec may have renamed since.
	handlers := run.handlers()
	if record, err := installer.ReadRecord(run.opts); err == nil && record != nil {
		handlers = record.HandlerNames()
	}

	pods, err := run.host.ReadySandboxes(ctx, handlers)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing the node's pods through CRI failed; reverting the node without waiting for Reaper's pods")
		return nil
	}
	return pods
}

// waitForPods reports the pods that hold up the uninstall in the status and an Event, and
// checks again after podsRecheckInterval.
func (r *Reconciler) waitForPods(ctx context.Context, node *reaperv1alpha1.ReaperNode, pods []installer.PodSandbox) (ctrl.Result, error) {
	message := podsRunningMessage(pods)
	if current := meta.FindStatusCondition(node.Status.Conditions, reaperv1alpha1.ConditionBinariesInstalled); current == nil || current.Message != message {
		r.event(node, corev1.EventTypeWarning, EventUninstallWaitingForPods, "Uninstall", "%s", message)
	}
	ctrl.LoggerFrom(ctx).Info("Waiting for Reaper's pods to end before reverting the node", "pods", len(pods))
	if err := r.applyStatus(ctx, node, uninstallingStatus(node, reaperv1alpha1.ReasonPodsRunning, message)); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: podsRecheckInterval}, nil
}

// podsRunningMessage names at most maxNamedPods of the pods and the action that ends the wait.
func podsRunningMessage(pods []installer.PodSandbox) string {
	return fmt.Sprintf("pods of Reaper's runtime handlers still run on the node: %s; the agent reverts the node when they are gone: delete them, or wait for them to end",
		installer.DescribePods(pods, maxNamedPods))
}

// uninstall reverts what the installs recorded, restarts containerd and removes the
// binaries last, under the node's installer lock.
func (r *Reconciler) uninstall(ctx context.Context, node *reaperv1alpha1.ReaperNode) error {
	run, err := r.newRun(node)
	if err != nil {
		return err
	}
	unlock, err := run.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()

	plan, err := installer.PlanUninstall(run.opts)
	if err != nil {
		return err
	}
	if !r.canRestart(ctx, run) {
		// The install writes its record before its first change, so without one nothing
		// in containerd's config needs a restart, and a restart method that does not work
		// on this node must not block the deletion.
		ctrl.LoggerFrom(ctx).Info("No install record and no working restart method: removing what is left without restarting containerd")
		_, err = plan.Apply(slogger(ctx))
		return err
	}
	// As for the install, a SIGTERM does not cut the revert short.
	_, err = run.host.Apply(context.WithoutCancel(ctx), slogger(ctx), plan)
	return err
}

// canRestart reports whether the uninstall restarts containerd: always when the host has
// an install record, else only when the restart method works on this node.
func (r *Reconciler) canRestart(ctx context.Context, run *run) bool {
	record, err := installer.ReadRecord(run.opts)
	if err != nil || record != nil {
		return true
	}
	return r.checkRestart(ctx, run) == nil
}
