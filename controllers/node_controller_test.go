package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
)

const waitTimeout = 15 * time.Second

func TestReaperNodeForSelectedNodesOnly(t *testing.T) {
	selected := createNode(t, uniqueName("select-linux"), nil)
	others := []string{
		createNode(t, uniqueName("select-other-pool"), map[string]string{testPoolLabel: "other"}).Name,
		createNode(t, uniqueName("select-no-pool"), map[string]string{testPoolLabel: ""}).Name,
		createNode(t, uniqueName("select-windows"), map[string]string{osLabel: "windows"}).Name,
	}

	reaperNode := waitForReaperNode(t, selected.Name)
	if reaperNode.Status.Phase != reaperv1alpha1.PhasePending {
		t.Errorf("phase of a new ReaperNode is %q, want Pending", reaperNode.Status.Phase)
	}
	owners := reaperNode.OwnerReferences
	if len(owners) != 1 || owners[0].Kind != "Node" || owners[0].Name != selected.Name || owners[0].UID != selected.UID {
		t.Errorf("owner references of ReaperNode %s are %+v, want the Node with UID %s", selected.Name, owners, selected.UID)
	}
	eventually(t, waitTimeout, "agent label on the selected Node", labelIs(selected.Name, reaperv1alpha1.AgentLabel, true))
	eventually(t, waitTimeout, "Event "+EventReaperNodeCreated, eventRecorded(selected.Name, EventReaperNodeCreated))
	eventually(t, waitTimeout, "HandlerAdvertised False", conditionIs(selected.Name, reaperv1alpha1.ConditionHandlerAdvertised, metav1.ConditionFalse, reaperv1alpha1.ReasonHandlerMissing))
	eventually(t, waitTimeout, "Ready False", conditionIs(selected.Name, reaperv1alpha1.ConditionReady, metav1.ConditionFalse, reaperv1alpha1.ReasonWaiting))

	consistently(t, 2*time.Second, "Nodes that the config does not select", func() error {
		for _, name := range others {
			_, err := getReaperNode(name)
			if err == nil {
				return fmt.Errorf("ReaperNode %s exists, want not found", name)
			}
			if client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("get ReaperNode %s: %w", name, err)
			}
			if err := labelIs(name, reaperv1alpha1.AgentLabel, false)(); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestReadyLabelNeedsPhaseAndHandler(t *testing.T) {
	name := uniqueName("gate")
	createNode(t, name, nil)
	waitForReaperNode(t, name)
	handler := testCfg.RuntimeClasses.Handler

	setRuntimeHandlers(t, name, "runc", handler)
	eventually(t, waitTimeout, "HandlerAdvertised True", conditionIs(name, reaperv1alpha1.ConditionHandlerAdvertised, metav1.ConditionTrue, reaperv1alpha1.ReasonSucceeded))
	consistently(t, time.Second, "no ready label while the phase is Pending", labelIs(name, reaperv1alpha1.ReadyLabel, false))

	reportPhase(t, name, reaperv1alpha1.PhaseReady)
	eventually(t, waitTimeout, "ready label with phase Ready and the handler", labelIs(name, reaperv1alpha1.ReadyLabel, true))
	eventually(t, waitTimeout, "Ready True", conditionIs(name, reaperv1alpha1.ConditionReady, metav1.ConditionTrue, reaperv1alpha1.ReasonSucceeded))

	setRuntimeHandlers(t, name, "runc")
	eventually(t, waitTimeout, "no ready label without the handler", labelIs(name, reaperv1alpha1.ReadyLabel, false))
	eventually(t, waitTimeout, "HandlerAdvertised False", conditionIs(name, reaperv1alpha1.ConditionHandlerAdvertised, metav1.ConditionFalse, reaperv1alpha1.ReasonHandlerMissing))
	eventually(t, waitTimeout, "Ready False", conditionIs(name, reaperv1alpha1.ConditionReady, metav1.ConditionFalse, reaperv1alpha1.ReasonWaiting))

	setRuntimeHandlers(t, name, handler)
	eventually(t, waitTimeout, "ready label back with the handler", labelIs(name, reaperv1alpha1.ReadyLabel, true))
	eventually(t, waitTimeout, "Event "+EventNodeReady, eventRecorded(name, EventNodeReady))
	eventually(t, waitTimeout, "Event "+EventNodeNotReady, eventRecorded(name, EventNodeNotReady))

	reportPhase(t, name, reaperv1alpha1.PhaseDegraded)
	eventually(t, waitTimeout, "no ready label in phase Degraded", labelIs(name, reaperv1alpha1.ReadyLabel, false))
	eventually(t, waitTimeout, "Ready False in phase Degraded", conditionIs(name, reaperv1alpha1.ConditionReady, metav1.ConditionFalse, reaperv1alpha1.ReasonWaiting))
}

func TestDeselectedNodeUninstalls(t *testing.T) {
	name := uniqueName("deselect")
	createNode(t, name, nil)
	waitForReaperNode(t, name)
	setFinalizer(t, name, true)
	setRuntimeHandlers(t, name, testCfg.RuntimeClasses.Handler)
	reportPhase(t, name, reaperv1alpha1.PhaseReady)
	eventually(t, waitTimeout, "ready label", labelIs(name, reaperv1alpha1.ReadyLabel, true))

	node, err := getNode(name)
	if err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(node.DeepCopy())
	delete(node.Labels, testPoolLabel)
	if err := k8sClient.Patch(context.Background(), node, patch); err != nil {
		t.Fatalf("remove label %s from Node %s: %v", testPoolLabel, name, err)
	}

	eventually(t, waitTimeout, "ReaperNode deleted", func() error {
		reaperNode, err := getReaperNode(name)
		if err != nil {
			return err
		}
		if reaperNode.DeletionTimestamp == nil {
			return fmt.Errorf("ReaperNode %s has no deletion timestamp", name)
		}
		return nil
	})
	eventually(t, waitTimeout, "no ready label on a deselected Node", labelIs(name, reaperv1alpha1.ReadyLabel, false))

	// The agent notices the deletion, reports Uninstalling, and waits for Ready=False.
	reportPhase(t, name, reaperv1alpha1.PhaseUninstalling)
	eventually(t, waitTimeout, "Ready False while uninstalling", conditionIs(name, reaperv1alpha1.ConditionReady, metav1.ConditionFalse, reaperv1alpha1.ReasonUninstalling))
	if err := labelIs(name, reaperv1alpha1.ReadyLabel, false)(); err != nil {
		t.Errorf("Ready is False for the uninstall, but: %v", err)
	}
	consistently(t, time.Second, "agent label while the ReaperNode exists", labelIs(name, reaperv1alpha1.AgentLabel, true))

	// The agent has reverted the node.
	setFinalizer(t, name, false)
	eventually(t, waitTimeout, "ReaperNode gone", reaperNodeGone(name))
	eventually(t, waitTimeout, "agent label removed after the ReaperNode is gone", labelIs(name, reaperv1alpha1.AgentLabel, false))
}

func TestDeletedNodeReleasesReaperNode(t *testing.T) {
	name := uniqueName("deleted")
	node := createNode(t, name, nil)
	waitForReaperNode(t, name)
	setFinalizer(t, name, true)

	if err := k8sClient.Delete(context.Background(), node); err != nil {
		t.Fatalf("delete Node %s: %v", name, err)
	}
	eventually(t, waitTimeout, "ReaperNode of a deleted Node gone, finalizer and all", reaperNodeGone(name))
}

func TestReaperNodeRecreatedAfterUserDelete(t *testing.T) {
	name := uniqueName("recreate")
	createNode(t, name, nil)
	first := waitForReaperNode(t, name)

	if err := k8sClient.Delete(context.Background(), first); err != nil {
		t.Fatalf("delete ReaperNode %s: %v", name, err)
	}
	eventually(t, waitTimeout, "a new ReaperNode for the still selected Node", func() error {
		reaperNode, err := getReaperNode(name)
		if err != nil {
			return err
		}
		if reaperNode.UID == first.UID {
			return fmt.Errorf("ReaperNode %s is still the deleted one", name)
		}
		return nil
	})
	eventually(t, waitTimeout, "agent label kept", labelIs(name, reaperv1alpha1.AgentLabel, true))
}

// eventRecorded returns a check that an Event with reason is recorded about the
// ReaperNode or the Node of name.
func eventRecorded(name, reason string) func() error {
	return func() error {
		events := &eventsv1.EventList{}
		if err := k8sClient.List(context.Background(), events); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Regarding.Name == name && e.Reason == reason && e.ReportingController == EventSource {
				return nil
			}
		}
		return fmt.Errorf("no Event with reason %s about %s among %d Events", reason, name, len(events.Items))
	}
}
