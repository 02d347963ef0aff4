package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
)

// TestSteadyStateMakesNoWrites checks that the controller writes nothing while nothing
// changes, even as kubelets post heartbeats and the DaemonSet's status changes.
func TestSteadyStateMakesNoWrites(t *testing.T) {
	ready := createNode(t, uniqueName("steady-ready"), nil).Name
	pending := createNode(t, uniqueName("steady-pending"), nil).Name
	createNode(t, uniqueName("steady-unselected"), map[string]string{testPoolLabel: ""})
	waitForReaperNode(t, ready)
	waitForReaperNode(t, pending)
	setRuntimeHandlers(t, ready, testCfg.RuntimeClasses.Handler)
	reportPhase(t, ready, reaperv1alpha1.PhaseReady)
	eventually(t, waitTimeout, "ready label", labelIs(ready, reaperv1alpha1.ReadyLabel, true))
	eventually(t, waitTimeout, "Ready True", conditionIs(ready, reaperv1alpha1.ConditionReady, metav1.ConditionTrue, reaperv1alpha1.ReasonSucceeded))
	eventually(t, waitTimeout, "installer DaemonSet", func() error { _, err := getDaemonSet(); return err })

	if writes := requests.reset(); len(writes) == 0 {
		t.Fatal("the request counter saw no writes while a node got ready, so it cannot show writes in steady state")
	}

	// Let the writes of the setup, and their watch events, settle.
	time.Sleep(2 * time.Second)
	requests.reset()

	for i := range 5 {
		postHeartbeat(t, ready)
		postHeartbeat(t, pending)
		updateDaemonSetStatus(t, int32(i))
		time.Sleep(time.Second)
	}

	writes := requests.reset()
	for key := range writes {
		// The leader renews its Lease every few seconds, whatever the cluster does.
		if strings.Contains(key, "/leases/"+LeaderElectionID) {
			delete(writes, key)
		}
	}
	if len(writes) > 0 {
		t.Errorf("the controller wrote in steady state: %v", writes)
	}
}

// postHeartbeat updates the Node's Ready condition, as a kubelet does every few seconds.
func postHeartbeat(t *testing.T, name string) {
	t.Helper()
	node, err := getNode(name)
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Conditions = []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(),
	}}
	if err := k8sClient.Status().Update(context.Background(), node); err != nil {
		t.Fatalf("post a heartbeat for Node %s: %v", name, err)
	}
}

func updateDaemonSetStatus(t *testing.T, ready int32) {
	t.Helper()
	ds, err := getDaemonSet()
	if err != nil {
		t.Fatal(err)
	}
	ds.Status = appsv1.DaemonSetStatus{NumberReady: ready, DesiredNumberScheduled: 5, CurrentNumberScheduled: 5, ObservedGeneration: ds.Generation}
	if err := k8sClient.Status().Update(context.Background(), ds); err != nil {
		t.Fatalf("update the DaemonSet's status: %v", err)
	}
}
