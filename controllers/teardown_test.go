package controllers

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
)

// TestTeardownWaitsForAgents runs last, because it stops the shared controller.
func TestTeardownWaitsForAgents(t *testing.T) {
	ctx := context.Background()
	name := uniqueName("teardown")
	createNode(t, name, nil)
	waitForReaperNode(t, name)
	setFinalizer(t, name, true)
	setRuntimeHandlers(t, name, testCfg.RuntimeClasses.Handler)
	reportPhase(t, name, reaperv1alpha1.PhaseReady)
	eventually(t, waitTimeout, "ready label", labelIs(name, reaperv1alpha1.ReadyLabel, true))
	eventually(t, waitTimeout, "installer DaemonSet", func() error { _, err := getDaemonSet(); return err })
	deployment := createControllerDeployment(t)
	stopManager()
	// Start the controller again for the next run of the suite, as with -count=2.
	t.Cleanup(func() {
		if err := startManager(); err != nil {
			t.Errorf("start the controller again: %v", err)
		}
	})

	// Teardown runs with the controller's ClusterRole, as the chart's hook does.
	controllerClient, err := client.New(controllerConfig, client.Options{Scheme: k8sClient.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	teardown := &Teardown{Client: controllerClient, Config: testCfg, Deployment: deployment.Name, Timeout: 2 * time.Second, Interval: 200 * time.Millisecond, Out: &out}
	err = teardown.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), name+`: phase "Ready"`) {
		t.Fatalf("teardown with an agent that does not revert its node: %v, want an error that names Node %s and its phase\n%s", err, name, out.String())
	}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(deployment), deployment); err != nil || *deployment.Spec.Replicas != 0 {
		t.Errorf("the controller's Deployment has %v replicas (%v), want 0", deployment.Spec.Replicas, err)
	}
	if err := labelIs(name, reaperv1alpha1.ReadyLabel, false)(); err != nil {
		t.Error(err)
	}
	if err := conditionIs(name, reaperv1alpha1.ConditionReady, metav1.ConditionFalse, reaperv1alpha1.ReasonUninstalling)(); err != nil {
		t.Error(err)
	}

	stopAgent := simulateUninstallingAgents(t)
	defer stopAgent()
	out.Reset()
	teardown.Timeout = waitTimeout
	if err := teardown.Run(ctx); err != nil {
		t.Fatalf("teardown: %v\n%s", err, out.String())
	}

	if err := reaperNodeGone(name)(); err != nil {
		t.Error(err)
	}
	if err := labelIs(name, reaperv1alpha1.AgentLabel, false)(); err != nil {
		t.Error(err)
	}
	for _, obj := range []client.Object{
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: testCfg.Agent.Name}},
		&nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "reaper"}},
		&nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "reaper-protected"}},
		&admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: testCfg.Admission.PolicyName}},
		&admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: testCfg.Admission.AgentPolicyName}},
	} {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj); err == nil {
			t.Errorf("%T %s still exists after teardown", obj, obj.GetName())
		}
	}
	list := &reaperv1alpha1.ReaperNodeList{}
	if err := k8sClient.List(ctx, list); err != nil || len(list.Items) > 0 {
		t.Errorf("%d ReaperNodes left after teardown (%v)", len(list.Items), err)
	}
}

func createControllerDeployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	labels := map[string]string{"app.kubernetes.io/name": "reaper-controller"}
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: uniqueName("reaper-controller")},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "controller", Image: testImage}}},
			},
		},
	}
	if err := k8sClient.Create(context.Background(), deployment); err != nil {
		t.Fatalf("create the controller's Deployment: %v", err)
	}
	return deployment
}

// simulateUninstallingAgents removes the finalizer of every deleted ReaperNode whose
// Ready condition is False with reason Uninstalling, as an agent does once it has
// reverted its node. It returns a function that stops it.
func simulateUninstallingAgents(t *testing.T) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			list := &reaperv1alpha1.ReaperNodeList{}
			if err := k8sClient.List(ctx, list); err != nil {
				continue
			}
			for i := range list.Items {
				reaperNode := &list.Items[i]
				ready := meta.FindStatusCondition(reaperNode.Status.Conditions, reaperv1alpha1.ConditionReady)
				if reaperNode.DeletionTimestamp == nil || ready == nil || ready.Reason != reaperv1alpha1.ReasonUninstalling {
					continue
				}
				patch := client.MergeFrom(reaperNode.DeepCopy())
				controllerutil.RemoveFinalizer(reaperNode, reaperv1alpha1.AgentFinalizer)
				if err := k8sClient.Patch(ctx, reaperNode, patch); client.IgnoreNotFound(err) != nil && ctx.Err() == nil {
					t.Errorf("simulated agent: remove the finalizer of ReaperNode %s: %v", reaperNode.Name, err)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
