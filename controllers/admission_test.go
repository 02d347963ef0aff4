package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
)

func createNamespace(t *testing.T, base string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: uniqueName(base)}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace %s: %v", ns.Name, err)
	}
	return ns.Name
}

func podSpec(runtimeClass string) corev1.PodSpec {
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "registry.test/busybox"}}}
	if runtimeClass != "" {
		spec.RuntimeClassName = &runtimeClass
	}
	return spec
}

func newPod(namespace, runtimeClass string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: "pod-"},
		Spec:       podSpec(runtimeClass),
	}
}

func newDeployment(namespace, runtimeClass string) *appsv1.Deployment {
	labels := map[string]string{"app": "test"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: "deploy-"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec(runtimeClass)},
		},
	}
}

func newCronJob(namespace, runtimeClass string) *batchv1.CronJob {
	spec := podSpec(runtimeClass)
	spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: "cron-"},
		Spec: batchv1.CronJobSpec{
			Schedule: "@hourly",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
				Template: corev1.PodTemplateSpec{Spec: spec},
			}},
		},
	}
}

// deniedWith returns nil when err is an admission denial whose message contains each
// of parts.
func deniedWith(err error, parts ...string) error {
	if err == nil {
		return fmt.Errorf("the request was allowed")
	}
	if !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err) {
		return fmt.Errorf("the request failed, but not as a denial: %w", err)
	}
	for _, part := range parts {
		if !strings.Contains(err.Error(), part) {
			return fmt.Errorf("the denial %q does not contain %q", err.Error(), part)
		}
	}
	return nil
}

func TestRuntimeClassPolicyNeedsOptIn(t *testing.T) {
	ctx := context.Background()
	ns := createNamespace(t, "apps")
	other := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: uniqueName("runc")}, Handler: "runc"}
	if err := k8sClient.Create(ctx, other); err != nil {
		t.Fatalf("create RuntimeClass %s: %v", other.Name, err)
	}
	optIn := fmt.Sprintf("kubectl label namespace %s reaper.dev/allowed=true", ns)

	// The API server enforces a new policy once it has compiled it, a moment later.
	eventually(t, waitTimeout, "Pod of RuntimeClass reaper denied", func() error {
		return deniedWith(k8sClient.Create(ctx, newPod(ns, "reaper")), "namespace "+ns, "RuntimeClass reaper", optIn)
	})
	if err := deniedWith(k8sClient.Create(ctx, newPod(ns, "reaper-protected")), "RuntimeClass reaper-protected", optIn); err != nil {
		t.Errorf("Pod of RuntimeClass reaper-protected: %v", err)
	}
	if err := deniedWith(k8sClient.Create(ctx, newDeployment(ns, "reaper")), "RuntimeClass reaper", optIn); err != nil {
		t.Errorf("Deployment with RuntimeClass reaper: %v", err)
	}
	if err := deniedWith(k8sClient.Create(ctx, newCronJob(ns, "reaper")), "RuntimeClass reaper", optIn); err != nil {
		t.Errorf("CronJob with RuntimeClass reaper: %v", err)
	}
	if err := k8sClient.Create(ctx, newPod(ns, other.Name)); err != nil {
		t.Errorf("Pod of RuntimeClass %s: %v, want it allowed", other.Name, err)
	}
	if err := k8sClient.Create(ctx, newPod(ns, "")); err != nil {
		t.Errorf("Pod without a RuntimeClass: %v, want it allowed", err)
	}

	// A Deployment created without the RuntimeClass cannot switch to it.
	deployment := newDeployment(ns, "")
	if err := k8sClient.Create(ctx, deployment); err != nil {
		t.Fatalf("create a Deployment without a RuntimeClass: %v", err)
	}
	deployment.Spec.Template.Spec.RuntimeClassName = new("reaper")
	if err := deniedWith(k8sClient.Update(ctx, deployment), "RuntimeClass reaper", optIn); err != nil {
		t.Errorf("update of a Deployment to RuntimeClass reaper: %v", err)
	}

	namespace := &corev1.Namespace{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: ns}, namespace); err != nil {
		t.Fatal(err)
	}
	namespace.Labels[reaperv1alpha1.DefaultOptInLabel] = "true"
	if err := k8sClient.Update(ctx, namespace); err != nil {
		t.Fatalf("label namespace %s: %v", ns, err)
	}
	eventually(t, waitTimeout, "Pod of RuntimeClass reaper allowed in an opted-in namespace", func() error {
		return k8sClient.Create(ctx, newPod(ns, "reaper"))
	})
	if err := k8sClient.Create(ctx, newDeployment(ns, "reaper-protected")); err != nil {
		t.Errorf("Deployment with RuntimeClass reaper-protected in an opted-in namespace: %v, want it allowed", err)
	}
}

// agentClient returns a client that acts as the agent's service account, with extra as
// the user-info extra of its token. The API server of envtest puts no node claim into
// tokens, so the test impersonates the agent.
func agentClient(t *testing.T, extra map[string][]string) client.Client {
	t.Helper()
	config := rest.CopyConfig(restConfig)
	config.Impersonate = rest.ImpersonationConfig{
		UserName: fmt.Sprintf("system:serviceaccount:%s:%s", testNamespace, testCfg.Agent.ServiceAccountName),
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + testNamespace, "system:authenticated"},
		Extra:    extra,
	}
	c, err := client.New(config, client.Options{Scheme: k8sClient.Scheme()})
	if err != nil {
		t.Fatalf("create the agent's client: %v", err)
	}
	return c
}

// grantAgentRole gives the agent's service account the agent's ClusterRole.
func grantAgentRole(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: uniqueName("reaper-agent")},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"reaper.dev"}, Resources: []string{"reapernodes"}, Verbs: []string{"get", "list", "watch", "patch", "update"}},
			{APIGroups: []string{"reaper.dev"}, Resources: []string{"reapernodes/status"}, Verbs: []string{"get", "patch", "update"}},
		},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: testNamespace, Name: testCfg.Agent.ServiceAccountName}},
	}
	for _, obj := range []client.Object{role, binding} {
		if err := k8sClient.Create(ctx, obj); err != nil {
			t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
		}
	}
}

func TestAgentPolicyLimitsAgentToItsNode(t *testing.T) {
	ctx := context.Background()
	grantAgentRole(t)
	own := createNode(t, uniqueName("agent-own"), nil).Name
	other := createNode(t, uniqueName("agent-other"), nil).Name
	waitForReaperNode(t, own)
	waitForReaperNode(t, other)

	agent := agentClient(t, map[string][]string{NodeNameExtra: {own}})
	applyPhase := func(c client.Client, name string) error {
		apply, err := statusApplyConfiguration(name, map[string]any{"phase": reaperv1alpha1.PhaseInstalling})
		if err != nil {
			return err
		}
		return c.Status().Apply(ctx, apply, client.FieldOwner(agentManager), client.ForceOwnership)
	}

	eventually(t, waitTimeout, "agent's write to another node's ReaperNode denied", func() error {
		return deniedWith(applyPhase(agent, other), "ReaperNode "+other, NodeNameExtra)
	})
	if err := applyPhase(agent, own); err != nil {
		t.Errorf("agent's write to its own ReaperNode: %v, want it allowed", err)
	}
	reaperNode, err := getReaperNode(own)
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Delete(ctx, reaperNode); !apierrors.IsForbidden(err) {
		t.Errorf("agent's delete of its ReaperNode: %v, want it forbidden", err)
	}

	noClaim := agentClient(t, nil)
	if err := deniedWith(applyPhase(noClaim, own), "ReaperNode "+own); err != nil {
		t.Errorf("write with a token without a node claim: %v", err)
	}
	// The policy leaves other users alone.
	if err := applyPhase(k8sClient, other); err != nil {
		t.Errorf("an administrator's write to ReaperNode %s: %v, want it allowed", other, err)
	}
}

// TestAgentPolicyWithBoundToken checks the policy with a real token: a service account
// token bound to a Pod on a Node carries that Node's name in its user-info extra.
func TestAgentPolicyWithBoundToken(t *testing.T) {
	ctx := context.Background()
	grantAgentRole(t)
	own := createNode(t, uniqueName("token-own"), nil).Name
	other := createNode(t, uniqueName("token-other"), nil).Name
	waitForReaperNode(t, own)
	waitForReaperNode(t, other)

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: testCfg.Agent.ServiceAccountName}}
	if err := k8sClient.Create(ctx, sa); client.IgnoreAlreadyExists(err) != nil {
		t.Fatalf("create ServiceAccount %s: %v", sa.Name, err)
	}
	pod := newPod(testNamespace, "")
	pod.Spec.ServiceAccountName = sa.Name
	pod.Spec.NodeName = own
	if err := k8sClient.Create(ctx, pod); err != nil {
		t.Fatalf("create the agent's Pod on Node %s: %v", own, err)
	}
	request := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if err := k8sClient.SubResource("token").Create(ctx, sa, request); err != nil {
		t.Fatalf("request a token bound to Pod %s: %v", pod.Name, err)
	}

	config := &rest.Config{Host: restConfig.Host, BearerToken: request.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: restConfig.CAData}}
	agent, err := client.New(config, client.Options{Scheme: k8sClient.Scheme()})
	if err != nil {
		t.Fatalf("create the agent's client: %v", err)
	}
	applyPhase := func(name string) error {
		apply, err := statusApplyConfiguration(name, map[string]any{"phase": reaperv1alpha1.PhaseInstalling})
		if err != nil {
			return err
		}
		return agent.Status().Apply(ctx, apply, client.FieldOwner(agentManager), client.ForceOwnership)
	}
	eventually(t, waitTimeout, "token's write to another node's ReaperNode denied", func() error {
		return deniedWith(applyPhase(other), "ReaperNode "+other)
	})
	if err := applyPhase(own); err != nil {
		t.Errorf("token's write to the ReaperNode of its Pod's Node: %v, want it allowed", err)
	}
}
