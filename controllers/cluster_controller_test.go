package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
)

func getDaemonSet() (*appsv1.DaemonSet, error) {
	ds := &appsv1.DaemonSet{}
	err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: testNamespace, Name: testCfg.Agent.Name}, ds)
	return ds, err
}

func TestAgentDaemonSetPodSpec(t *testing.T) {
	var ds *appsv1.DaemonSet
	eventually(t, waitTimeout, "installer DaemonSet created", func() (err error) {
		ds, err = getDaemonSet()
		return err
	})
	pod := ds.Spec.Template.Spec

	if got := ds.Spec.Template.Spec.NodeSelector; got[reaperv1alpha1.AgentLabel] != "true" || got[osLabel] != "linux" {
		t.Errorf("nodeSelector is %v, want %s=true and %s=linux", got, reaperv1alpha1.AgentLabel, osLabel)
	}
	if !pod.HostPID || pod.HostNetwork {
		t.Errorf("hostPID %v, hostNetwork %v; want true and false", pod.HostPID, pod.HostNetwork)
	}
	if pod.ServiceAccountName != "reaper-agent" || pod.PriorityClassName != "system-node-critical" {
		t.Errorf("serviceAccountName %q, priorityClassName %q; want reaper-agent and system-node-critical", pod.ServiceAccountName, pod.PriorityClassName)
	}
	if len(pod.Tolerations) != 1 || pod.Tolerations[0].Operator != corev1.TolerationOpExists || pod.Tolerations[0].Key != "" {
		t.Errorf("tolerations are %+v, want one that tolerates every taint", pod.Tolerations)
	}
	if ds.Spec.UpdateStrategy.RollingUpdate == nil || ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable.IntValue() != 1 {
		t.Errorf("update strategy is %+v, want a rolling update with maxUnavailable 1", ds.Spec.UpdateStrategy)
	}

	if len(pod.Containers) != 1 {
		t.Fatalf("the pod has %d containers, want 1", len(pod.Containers))
	}
	agent := pod.Containers[0]
	if agent.Image != testImage || len(agent.Command) != 1 || agent.Command[0] != "/usr/local/bin/reaper-installer" {
		t.Errorf("image %q, command %v; want %s and /usr/local/bin/reaper-installer", agent.Image, agent.Command, testImage)
	}
	wantArgs := []string{
		"agent", "--node-name=$(NODE_NAME)", "--host-root=/host", "--install-dir=/opt/reaper/bin", "--restart=auto",
		"--handler=reaper", "--protected-handler=reaper-protected", "--resync-period=5m0s", "--health-probe-bind-address=:8082",
	}
	if !slices.Equal(agent.Args, wantArgs) {
		t.Errorf("args are\n  %q\nwant\n  %q", agent.Args, wantArgs)
	}
	if len(agent.Env) != 1 || agent.Env[0].Name != "NODE_NAME" || agent.Env[0].ValueFrom == nil ||
		agent.Env[0].ValueFrom.FieldRef == nil || agent.Env[0].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("env is %+v, want NODE_NAME from spec.nodeName", agent.Env)
	}
	sc := agent.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.Privileged == nil || *sc.Privileged {
		t.Errorf("securityContext is %+v, want runAsUser 0 and privileged false", sc)
	}
	for _, probe := range []struct {
		name string
		got  *corev1.Probe
		path string
	}{{"liveness", agent.LivenessProbe, "/healthz"}, {"readiness", agent.ReadinessProbe, "/readyz"}} {
		if probe.got == nil || probe.got.HTTPGet == nil || probe.got.HTTPGet.Path != probe.path || probe.got.HTTPGet.Port.String() != "health" {
			t.Errorf("%s probe is %+v, want GET %s on port health", probe.name, probe.got, probe.path)
		}
	}
	if len(agent.Ports) != 1 || agent.Ports[0].ContainerPort != 8082 {
		t.Errorf("ports are %+v, want 8082", agent.Ports)
	}

	mounts := map[string]string{}
	for _, m := range agent.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if len(pod.Volumes) != len(DefaultHostPaths) {
		t.Errorf("the pod has %d volumes, want one per default host path, %d", len(pod.Volumes), len(DefaultHostPaths))
	}
	for _, v := range pod.Volumes {
		if v.HostPath == nil || v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectoryOrCreate {
			t.Errorf("volume %s is %+v, want a hostPath of type DirectoryOrCreate", v.Name, v.VolumeSource)
			continue
		}
		if want := "/host" + v.HostPath.Path; mounts[v.Name] != want {
			t.Errorf("volume %s of host path %s is mounted at %q, want %s", v.Name, v.HostPath.Path, mounts[v.Name], want)
		}
	}
}

func TestRuntimeClassesSelectReadyNodes(t *testing.T) {
	for name, handler := range map[string]string{"reaper": "reaper", "reaper-protected": "reaper-protected"} {
		rc := &nodev1.RuntimeClass{}
		eventually(t, waitTimeout, "RuntimeClass "+name, func() error {
			return k8sClient.Get(context.Background(), client.ObjectKey{Name: name}, rc)
		})
		if rc.Handler != handler {
			t.Errorf("RuntimeClass %s has handler %q, want %q", name, rc.Handler, handler)
		}
		if rc.Scheduling == nil || rc.Scheduling.NodeSelector[reaperv1alpha1.ReadyLabel] != "true" {
			t.Errorf("RuntimeClass %s schedules with %+v, want nodeSelector %s=true", name, rc.Scheduling, reaperv1alpha1.ReadyLabel)
		}
	}
}

func TestKeptObjectsRepaired(t *testing.T) {
	ctx := context.Background()
	var ds *appsv1.DaemonSet
	eventually(t, waitTimeout, "installer DaemonSet created", func() (err error) {
		ds, err = getDaemonSet()
		return err
	})

	// A user's edit of the agent's image.
	ds.Spec.Template.Spec.Containers[0].Image = "registry.test/other:latest"
	if err := k8sClient.Update(ctx, ds, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatalf("edit the DaemonSet: %v", err)
	}
	eventually(t, waitTimeout, "DaemonSet image reverted", func() error {
		ds, err := getDaemonSet()
		if err != nil {
			return err
		}
		if got := ds.Spec.Template.Spec.Containers[0].Image; got != testImage {
			return fmt.Errorf("image is %q", got)
		}
		return nil
	})

	// A user's delete of a RuntimeClass.
	rc := &nodev1.RuntimeClass{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: "reaper"}, rc); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Delete(ctx, rc); err != nil {
		t.Fatalf("delete RuntimeClass reaper: %v", err)
	}
	eventually(t, waitTimeout, "RuntimeClass recreated", func() error {
		again := &nodev1.RuntimeClass{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Name: "reaper"}, again); err != nil {
			return err
		}
		if again.UID == rc.UID {
			return fmt.Errorf("RuntimeClass reaper is still the deleted one")
		}
		return nil
	})

	// A user's edit of a RuntimeClass's scheduling.
	scheduling := []byte(`{"scheduling":{"nodeSelector":{"reaper.dev/ready":null,"pool":"any"}}}`)
	rcKey := client.ObjectKey{Name: "reaper-protected"}
	if err := k8sClient.Patch(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: rcKey.Name}}, client.RawPatch(types.MergePatchType, scheduling), client.FieldOwner("kubectl-patch")); err != nil {
		t.Fatalf("patch RuntimeClass %s: %v", rcKey.Name, err)
	}
	eventually(t, waitTimeout, "RuntimeClass scheduling reverted", func() error {
		again := &nodev1.RuntimeClass{}
		if err := k8sClient.Get(ctx, rcKey, again); err != nil {
			return err
		}
		if again.Scheduling == nil || again.Scheduling.NodeSelector[reaperv1alpha1.ReadyLabel] != "true" {
			return fmt.Errorf("scheduling is %+v", again.Scheduling)
		}
		return nil
	})

	// A user's patch that turns the policy's check off.
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{}
	key := client.ObjectKey{Name: testCfg.Admission.PolicyName}
	if err := k8sClient.Get(ctx, key, policy); err != nil {
		t.Fatal(err)
	}
	want := policy.Spec.Validations[0].Expression
	patch := []byte(`[{"op":"replace","path":"/spec/validations/0/expression","value":"true"}]`)
	if err := k8sClient.Patch(ctx, policy, client.RawPatch(types.JSONPatchType, patch), client.FieldOwner("kubectl-patch")); err != nil {
		t.Fatalf("patch the policy: %v", err)
	}
	eventually(t, waitTimeout, "policy expression reverted", func() error {
		if err := k8sClient.Get(ctx, key, policy); err != nil {
			return err
		}
		if got := policy.Spec.Validations[0].Expression; got != want {
			return fmt.Errorf("expression is %q", got)
		}
		return nil
	})

	// A user's switch of a binding to warnings. Deny may not stand beside Warn, so the
	// controller replaces the binding.
	warn := []byte(`{"spec":{"validationActions":["Warn"]}}`)
	bindingKey := client.ObjectKey{Name: testCfg.Admission.PolicyName}
	edited := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: bindingKey.Name}}
	if err := k8sClient.Patch(ctx, edited, client.RawPatch(types.MergePatchType, warn), client.FieldOwner("kubectl-patch")); err != nil {
		t.Fatalf("patch binding %s: %v", bindingKey.Name, err)
	}
	eventually(t, waitTimeout, "binding validationActions reverted", func() error {
		if err := k8sClient.Get(ctx, bindingKey, edited); err != nil {
			return err
		}
		if got := edited.Spec.ValidationActions; len(got) != 1 || got[0] != admissionregistrationv1.Deny {
			return fmt.Errorf("validationActions are %v, want [Deny]", got)
		}
		return nil
	})

	// A user's delete of a binding.
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: testCfg.Admission.AgentPolicyName}, binding); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Delete(ctx, binding); err != nil {
		t.Fatalf("delete the binding: %v", err)
	}
	eventually(t, waitTimeout, "binding recreated", func() error {
		again := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(binding), again); err != nil {
			return err
		}
		if again.UID == binding.UID {
			return fmt.Errorf("the binding is still the deleted one")
		}
		return nil
	})
}

// TestClusterReconcilerFollowsConfigChanges runs the cluster reconciler once per config,
// with names that the shared controller does not keep.
func TestClusterReconcilerFollowsConfigChanges(t *testing.T) {
	ctx := context.Background()
	cfg := Config{Namespace: testNamespace}
	cfg.Agent.Image = testImage
	cfg.Agent.Name = uniqueName("agent")
	cfg.RuntimeClasses.Name = uniqueName("rc")
	cfg.RuntimeClasses.ProtectedName = new("")
	cfg.RuntimeClasses.Handler = "handler-a"
	cfg.Admission.PolicyName = uniqueName("policy")
	cfg.Admission.AgentPolicyName = uniqueName("agent-policy")
	cfg.Default()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reconcile := func(cfg Config) {
		t.Helper()
		r := &ClusterReconciler{Client: k8sClient, Config: cfg}
		if _, err := r.Reconcile(ctx, clusterRequest); err != nil {
			t.Fatalf("reconcile: %v", err)
		}
	}
	reconcile(cfg)

	rc := &nodev1.RuntimeClass{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: cfg.RuntimeClasses.Name}, rc); err != nil || rc.Handler != "handler-a" {
		t.Fatalf("RuntimeClass %s: handler %q (%v), want handler-a", cfg.RuntimeClasses.Name, rc.Handler, err)
	}
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: cfg.Admission.PolicyName}, policy); err != nil {
		t.Fatalf("policy %s: %v", cfg.Admission.PolicyName, err)
	}
	if !strings.Contains(policy.Spec.Validations[0].Expression, `["`+cfg.RuntimeClasses.Name+`"]`) {
		t.Errorf("the policy checks %q, want only RuntimeClass %s, because the protected one is off", policy.Spec.Validations[0].Expression, cfg.RuntimeClasses.Name)
	}

	// A RuntimeClass's handler cannot change, so a new handler replaces the RuntimeClass.
	changed := cfg
	changed.RuntimeClasses.Handler = "handler-b"
	changed.Admission.Enabled = new(false)
	reconcile(changed)
	replaced := &nodev1.RuntimeClass{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: cfg.RuntimeClasses.Name}, replaced); err != nil || replaced.Handler != "handler-b" {
		t.Errorf("RuntimeClass %s after the handler changed: handler %q (%v), want handler-b", cfg.RuntimeClasses.Name, replaced.Handler, err)
	}
	if replaced.UID == rc.UID {
		t.Errorf("RuntimeClass %s kept its UID, want a new RuntimeClass", cfg.RuntimeClasses.Name)
	}
	ds, err := getNamedDaemonSet(cfg.Agent.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ds.Spec.Template.Spec.Containers[0].Args, "--handler=handler-b") {
		t.Errorf("agent args %q, want --handler=handler-b", ds.Spec.Template.Spec.Containers[0].Args)
	}
	if !slices.Contains(ds.Spec.Template.Spec.Containers[0].Args, "--protected-handler=") {
		t.Errorf("agent args %q, want an empty --protected-handler, because the protected RuntimeClass is off", ds.Spec.Template.Spec.Containers[0].Args)
	}

	// With admission.enabled false, the runtime-class policy goes and the agent policy stays.
	for _, obj := range runtimeClassPolicyObjects(changed) {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj); err == nil {
			t.Errorf("%s still exists with admission.enabled false", describeObject(obj))
		}
	}
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: cfg.Admission.AgentPolicyName}, policy); err != nil {
		t.Errorf("agent policy %s with admission.enabled false: %v, want it kept", cfg.Admission.AgentPolicyName, err)
	}
}

func getNamedDaemonSet(name string) (*appsv1.DaemonSet, error) {
	ds := &appsv1.DaemonSet{}
	err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: testNamespace, Name: name}, ds)
	return ds, err
}

// TestKeptObjectsMatchConfig checks that the fields the controller owns in each kept
// object equal its config. A field that the API server defaults and the config leaves
// out would differ, and the controller would apply the object on every pass.
func TestKeptObjectsMatchConfig(t *testing.T) {
	r := &ClusterReconciler{Client: k8sClient, Config: testCfg}
	eventually(t, waitTimeout, "kept objects created", func() error {
		_, err := getDaemonSet()
		return err
	})
	for name, kept := range r.keptObjects() {
		wrote, err := kept.ensure(context.Background(), k8sClient)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if wrote {
			t.Errorf("%s differs from the config after the controller applied it", name)
		}
	}
}
