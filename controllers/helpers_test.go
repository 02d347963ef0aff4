package controllers

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
)

// agentManager is the field manager of the simulated agent.
const agentManager = "reaper-agent"

var nameCount atomic.Int64

// uniqueName returns base with a number that no earlier call returned, so that a test
// run with -count=N creates new objects.
func uniqueName(base string) string {
	return fmt.Sprintf("%s-%d", base, nameCount.Add(1))
}

// createNode creates a Linux Node that the test config selects, with extra labels
// merged in; a label with an empty value is left out.
func createNode(t *testing.T, name string, labels map[string]string) *corev1.Node {
	t.Helper()
	all := map[string]string{osLabel: "linux", testPoolLabel: "reaper"}
	for k, v := range labels {
		if v == "" {
			delete(all, k)
			continue
		}
		all[k] = v
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: all}}
	if err := k8sClient.Create(context.Background(), node); err != nil {
		t.Fatalf("create Node %s: %v", name, err)
	}
	return node
}

func getNode(name string) (*corev1.Node, error) {
	node := &corev1.Node{}
	err := k8sClient.Get(context.Background(), client.ObjectKey{Name: name}, node)
	return node, err
}

func getReaperNode(name string) (*reaperv1alpha1.ReaperNode, error) {
	reaperNode := &reaperv1alpha1.ReaperNode{}
	err := k8sClient.Get(context.Background(), client.ObjectKey{Name: name}, reaperNode)
	return reaperNode, err
}

// setRuntimeHandlers sets the Node's status.runtimeHandlers, as the kubelet does.
func setRuntimeHandlers(t *testing.T, name string, handlers ...string) {
	t.Helper()
	node, err := getNode(name)
	if err != nil {
		t.Fatalf("get Node %s: %v", name, err)
	}
	node.Status.RuntimeHandlers = nil
	for _, h := range handlers {
		node.Status.RuntimeHandlers = append(node.Status.RuntimeHandlers, corev1.NodeRuntimeHandler{Name: h})
	}
	if err := k8sClient.Status().Update(context.Background(), node); err != nil {
		t.Fatalf("set status.runtimeHandlers of Node %s: %v", name, err)
	}
}

// reportPhase applies phase to the ReaperNode's status as the agent does, with its own
// field manager and forced ownership.
func reportPhase(t *testing.T, name string, phase reaperv1alpha1.ReaperNodePhase) {
	t.Helper()
	apply, err := statusApplyConfiguration(name, map[string]any{"phase": phase})
	if err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Status().Apply(context.Background(), apply, client.FieldOwner(agentManager), client.ForceOwnership); err != nil {
		t.Fatalf("apply phase %s to ReaperNode %s: %v", phase, name, err)
	}
}

// setFinalizer adds or removes the agent's finalizer, as the agent does before its first
// change to the node and after it has reverted the node.
func setFinalizer(t *testing.T, name string, present bool) {
	t.Helper()
	reaperNode, err := getReaperNode(name)
	if err != nil {
		t.Fatalf("get ReaperNode %s: %v", name, err)
	}
	patch := client.MergeFromWithOptions(reaperNode.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if present {
		controllerutil.AddFinalizer(reaperNode, reaperv1alpha1.AgentFinalizer)
	} else {
		controllerutil.RemoveFinalizer(reaperNode, reaperv1alpha1.AgentFinalizer)
	}
	if err := k8sClient.Patch(context.Background(), reaperNode, patch); err != nil {
		t.Fatalf("set the finalizer of ReaperNode %s to %v: %v", name, present, err)
	}
}

// waitForReaperNode waits until the ReaperNode of name exists and has its phase set.
func waitForReaperNode(t *testing.T, name string) *reaperv1alpha1.ReaperNode {
	t.Helper()
	var reaperNode *reaperv1alpha1.ReaperNode
	eventually(t, 10*time.Second, "ReaperNode "+name+" created with phase Pending", func() error {
		var err error
		reaperNode, err = getReaperNode(name)
		if err != nil {
			return err
		}
		if reaperNode.Status.Phase == "" {
			return fmt.Errorf("phase is empty")
		}
		return nil
	})
	return reaperNode
}

// labelIs returns a check that the Node's label is "true" when want is true, and absent
// when it is false.
func labelIs(name, label string, want bool) func() error {
	return func() error {
		node, err := getNode(name)
		if err != nil {
			return err
		}
		value, ok := node.Labels[label]
		switch {
		case want && value != "true":
			return fmt.Errorf("label %s of Node %s is %q, want \"true\"", label, name, value)
		case !want && ok:
			return fmt.Errorf("label %s of Node %s is %q, want it absent", label, name, value)
		}
		return nil
	}
}

// conditionIs returns a check that the ReaperNode's condition has status and reason.
func conditionIs(name, conditionType string, status metav1.ConditionStatus, reason string) func() error {
	return func() error {
		reaperNode, err := getReaperNode(name)
		if err != nil {
			return err
		}
		c := meta.FindStatusCondition(reaperNode.Status.Conditions, conditionType)
		if c == nil {
			return fmt.Errorf("ReaperNode %s has no condition %s", name, conditionType)
		}
		if c.Status != status || c.Reason != reason {
			return fmt.Errorf("condition %s of ReaperNode %s is %s/%s (%s), want %s/%s",
				conditionType, name, c.Status, c.Reason, c.Message, status, reason)
		}
		return nil
	}
}

// reaperNodeGone returns a check that the ReaperNode of name does not exist.
func reaperNodeGone(name string) func() error {
	return func() error {
		reaperNode, err := getReaperNode(name)
		if err == nil {
			return fmt.Errorf("ReaperNode %s still exists (deletion %v, finalizers %v)", name, reaperNode.DeletionTimestamp, reaperNode.Finalizers)
		}
		return client.IgnoreNotFound(err)
	}
}
