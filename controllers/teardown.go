package controllers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
)

// Teardown removes Reaper from the cluster, as the chart's pre-delete hook runs it. The
// agents revert their nodes while their ReaperNodes are deleted, so the DaemonSet goes
// last.
type Teardown struct {
	// Client talks to the API server directly, without a cache.
	Client client.Client
	Config Config
	// Deployment names the controller's Deployment, in ControllerNamespace. Empty skips
	// scaling it down.
	Deployment string
	// ControllerNamespace is the controller's own namespace. It can differ from
	// Config.Namespace, the DaemonSet's; empty means Config.Namespace.
	ControllerNamespace string
	// Timeout bounds each wait: for the controller's pods, and for the agents.
	Timeout time.Duration
	// Interval is how often a wait checks again; 0 means 2 s.
	Interval time.Duration
	// Out receives the progress lines.
	Out io.Writer
}

// Run stops the controller, deletes the RuntimeClasses, the ready labels and every
// ReaperNode, waits until the agents have reverted their nodes, and then deletes the
// admission policies, the DaemonSet and the agent labels. It fails with the nodes that
// were not reverted in time.
func (t *Teardown) Run(ctx context.Context) error {
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"stop the controller", t.stopController},
		{"delete the RuntimeClasses", t.deleteRuntimeClasses},
		{"remove the ready labels", func(ctx context.Context) error { return t.removeNodeLabel(ctx, reaperv1alpha1.ReadyLabel) }},
		{"delete the ReaperNodes", t.deleteReaperNodes},
		{"wait for the agents", t.waitForAgents},
		{"delete the admission policies and the DaemonSet", t.deleteKeptObjects},
		{"remove the agent labels", func(ctx context.Context) error { return t.removeNodeLabel(ctx, reaperv1alpha1.AgentLabel) }},
	}
	for _, step := range steps {
		t.printf("teardown: %s", step.name)
		if err := step.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", step.name, err)
		}
	}
	t.printf("teardown: done")
	return nil
}

// stopController scales the controller's Deployment to zero and waits until its pods
// are gone, so that it does not create the objects again.
func (t *Teardown) stopController(ctx context.Context) error {
	if t.Deployment == "" {
		return nil
	}
	deployment := &appsv1.Deployment{}
	key := client.ObjectKey{Namespace: t.ControllerNamespace, Name: t.Deployment}
	if key.Namespace == "" {
		key.Namespace = t.Config.Namespace
	}
	if err := t.Client.Get(ctx, key, deployment); err != nil {
		if apierrors.IsNotFound(err) {
			t.printf("  Deployment %s not found; nothing to stop", key)
			return nil
		}
		return fmt.Errorf("get Deployment %s: %w", key, err)
	}
	selector, err := metav1.LabelSelectorAsSelector(deployment.Spec.Selector)
	if err != nil {
		return fmt.Errorf("selector of Deployment %s: %w", key, err)
	}
	// The patch decodes the Scale that it returns into its object, so it gets a copy.
	scale := rawMergePatch(map[string]any{"spec": map[string]any{"replicas": 0}})
	if err := t.Client.SubResource("scale").Patch(ctx, deployment.DeepCopy(), scale); err != nil {
		return fmt.Errorf("scale Deployment %s to 0: %w", key, err)
	}

	running := -1
	err = t.poll(ctx, func(ctx context.Context) (bool, error) {
		pods := &corev1.PodList{}
		if err := t.Client.List(ctx, pods, client.InNamespace(key.Namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
			return false, fmt.Errorf("list the pods of Deployment %s: %w", key, err)
		}
		if len(pods.Items) != running && len(pods.Items) > 0 {
			t.printf("  waiting for %d controller pods to stop", len(pods.Items))
		}
		running = len(pods.Items)
		return running == 0, nil
	})
	if errors.Is(err, errWaitTimeout) {
		return fmt.Errorf("%d pods of Deployment %s still exist after %s: check why they do not stop (kubectl -n %s get pods), then run teardown again",
			running, key, t.Timeout, key.Namespace)
	}
	return err
}

func (t *Teardown) deleteRuntimeClasses(ctx context.Context) error {
	names := reaperRuntimeClasses(t.Config)
	objs := make([]client.Object, 0, len(names))
	for _, name := range names {
		objs = append(objs, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: name}})
	}
	return t.deleteAll(ctx, objs)
}

// removeNodeLabel removes label from every Node that has it.
func (t *Teardown) removeNodeLabel(ctx context.Context, label string) error {
	nodes := &corev1.NodeList{}
	if err := t.Client.List(ctx, nodes, client.HasLabels{label}); err != nil {
		return fmt.Errorf("list the Nodes labeled %s: %w", label, err)
	}
	patch := rawMergePatch(map[string]any{"metadata": map[string]any{"labels": map[string]any{label: nil}}})
	for i := range nodes.Items {
		if err := t.Client.Patch(ctx, &nodes.Items[i], patch, client.FieldOwner(FieldManager)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("remove label %s from Node %s: %w", label, nodes.Items[i].Name, err)
		}
	}
	t.printf("  removed %s from %d Nodes", label, len(nodes.Items))
	return nil
}

// deleteReaperNodes deletes every ReaperNode and sets its Ready condition to False, which
// the controller would do and its agent waits for before it reverts the node.
func (t *Teardown) deleteReaperNodes(ctx context.Context) error {
	list := &reaperv1alpha1.ReaperNodeList{}
	if err := t.Client.List(ctx, list); err != nil {
		return fmt.Errorf("list ReaperNodes: %w", err)
	}
	for i := range list.Items {
		reaperNode := &list.Items[i]
		if err := t.Client.Delete(ctx, reaperNode); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete ReaperNode %s: %w", reaperNode.Name, err)
		}
		if err := t.markUninstalling(ctx, reaperNode); err != nil {
			return err
		}
	}
	t.printf("  deleted %d ReaperNodes", len(list.Items))
	return nil
}

// markUninstalling applies Ready=False. The apply carries the controller's other
// condition as it is, because an apply leaves out no field that its manager owns.
func (t *Teardown) markUninstalling(ctx context.Context, reaperNode *reaperv1alpha1.ReaperNode) error {
	name := reaperNode.Name
	ready := metav1.Condition{
		Type:               reaperv1alpha1.ConditionReady,
		Status:             metav1.ConditionFalse,
		Reason:             reaperv1alpha1.ReasonUninstalling,
		Message:            fmt.Sprintf("Reaper is being removed from the cluster and label %s is removed from the Node", reaperv1alpha1.ReadyLabel),
		LastTransitionTime: metav1.Now(),
	}
	conditions := []metav1.Condition{ready}
	if advertised := meta.FindStatusCondition(reaperNode.Status.Conditions, reaperv1alpha1.ConditionHandlerAdvertised); advertised != nil {
		conditions = append(conditions, *advertised)
	}
	apply, err := statusApplyConfiguration(name, map[string]any{"conditions": conditions})
	if err != nil {
		return err
	}
	err = t.Client.Status().Apply(ctx, apply, client.FieldOwner(FieldManager), client.ForceOwnership)
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("set condition Ready=False on ReaperNode %s: %w", name, err)
	}
	return nil
}

// waitForAgents waits until every ReaperNode is gone. The finalizer of a ReaperNode whose
// Node is gone is removed, because no agent is left to revert it.
func (t *Teardown) waitForAgents(ctx context.Context) error {
	var left []reaperv1alpha1.ReaperNode
	err := t.poll(ctx, func(ctx context.Context) (bool, error) {
		list := &reaperv1alpha1.ReaperNodeList{}
		if err := t.Client.List(ctx, list); err != nil {
			return false, fmt.Errorf("list ReaperNodes: %w", err)
		}
		if err := t.releaseNodesGone(ctx, list.Items); err != nil {
			return false, err
		}
		if len(list.Items) > 0 && len(list.Items) != len(left) {
			t.printf("  %d ReaperNodes left: %s", len(list.Items), reaperNodeNames(list.Items, 10))
		}
		left = list.Items
		return len(left) == 0, nil
	})
	if errors.Is(err, errWaitTimeout) {
		return fmt.Errorf("%d nodes were not reverted within %s; the agents may still be working, or failing:\n%s"+
			"check the agent pods' logs, then run teardown again",
			len(left), t.Timeout, describeReaperNodes(left))
	}
	return err
}

func (t *Teardown) releaseNodesGone(ctx context.Context, reaperNodes []reaperv1alpha1.ReaperNode) error {
	for i := range reaperNodes {
		reaperNode := &reaperNodes[i]
		err := t.Client.Get(ctx, client.ObjectKey{Name: reaperNode.Name}, &corev1.Node{})
		if !apierrors.IsNotFound(err) {
			if err != nil {
				return fmt.Errorf("get Node %s: %w", reaperNode.Name, err)
			}
			continue
		}
		if !controllerutil.ContainsFinalizer(reaperNode, reaperv1alpha1.AgentFinalizer) {
			continue
		}
		patch := client.MergeFromWithOptions(reaperNode.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.RemoveFinalizer(reaperNode, reaperv1alpha1.AgentFinalizer)
		if err := t.Client.Patch(ctx, reaperNode, patch); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("remove the finalizer of ReaperNode %s, whose Node is gone: %w", reaperNode.Name, err)
		}
		t.printf("  Node %s is gone; removed the finalizer of its ReaperNode", reaperNode.Name)
	}
	return nil
}

func (t *Teardown) deleteKeptObjects(ctx context.Context) error {
	cfg := t.Config
	objs := runtimeClassPolicyObjects(cfg)
	agentPolicy := metav1.ObjectMeta{Name: cfg.Admission.AgentPolicyName}
	objs = append(objs,
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: agentPolicy},
		&admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: agentPolicy},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: cfg.Namespace, Name: cfg.Agent.Name}},
	)
	return t.deleteAll(ctx, objs)
}

func (t *Teardown) deleteAll(ctx context.Context, objs []client.Object) error {
	for _, obj := range objs {
		deleted, err := deleteIfPresent(ctx, t.Client, obj)
		if err != nil {
			return err
		}
		if deleted {
			t.printf("  deleted %s", describeObject(obj))
		}
	}
	return nil
}

// errWaitTimeout is the error of poll when the timeout passes.
var errWaitTimeout = errors.New("timed out")

// poll calls done until it returns true or an error, every Interval for at most Timeout.
// Each call gets ctx itself, so a request is not cut short by the timeout.
func (t *Teardown) poll(ctx context.Context, done func(context.Context) (bool, error)) error {
	interval := t.Interval
	if interval == 0 {
		interval = 2 * time.Second
	}
	deadline := time.Now().Add(t.Timeout)
	for {
		ok, err := done(ctx)
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return errWaitTimeout
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

func (t *Teardown) printf(format string, args ...any) {
	if t.Out != nil {
		fmt.Fprintf(t.Out, format+"\n", args...)
	}
}

func reaperNodeNames(reaperNodes []reaperv1alpha1.ReaperNode, limit int) string {
	names := make([]string, 0, len(reaperNodes))
	for _, n := range reaperNodes {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	if len(names) > limit {
		return strings.Join(names[:limit], ", ") + fmt.Sprintf(" and %d more", len(names)-limit)
	}
	return strings.Join(names, ", ")
}

// describeReaperNodes returns one line per ReaperNode: its phase and the message of
// each condition that is not True.
func describeReaperNodes(reaperNodes []reaperv1alpha1.ReaperNode) string {
	var b strings.Builder
	for _, n := range reaperNodes {
		fmt.Fprintf(&b, "  %s: phase %q", n.Name, n.Status.Phase)
		for _, c := range n.Status.Conditions {
			if c.Status != metav1.ConditionTrue {
				fmt.Fprintf(&b, "; %s=%s %s: %s", c.Type, c.Status, c.Reason, c.Message)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// describeObject returns the kind and name of obj, such as "RuntimeClass reaper".
func describeObject(obj client.Object) string {
	kind := reflect.TypeOf(obj).Elem().Name()
	if obj.GetNamespace() == "" {
		return kind + " " + obj.GetName()
	}
	return kind + " " + obj.GetNamespace() + "/" + obj.GetName()
}
