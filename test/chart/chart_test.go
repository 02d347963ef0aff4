package chart

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
	"reaper.dev/reaper/controllers"
)

// Names of the objects that the default values give to the release "reaper".
const (
	controllerName = "reaper-controller"
	agentName      = "reaper-agent"
	configMapName  = "reaper-controller-config"
	eventsRoleName = "reaper-controller-events"
	teardownName   = "reaper-teardown"
	crdName        = "reapernodes.reaper.dev"
)

// stableLabels are the only labels a selector may use: they never change over the life of a
// release, while app.kubernetes.io/version and helm.sh/chart change on each upgrade.
var stableLabels = []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"}

func TestDefaultRenderObjects(t *testing.T) {
	r := render(t, nil)

	want := []string{
		"ClusterRole/" + agentName,
		"ClusterRole/" + controllerName,
		"ClusterRoleBinding/" + agentName,
		"ClusterRoleBinding/" + controllerName,
		"ConfigMap/" + configMapName,
		"CustomResourceDefinition/" + crdName,
		"Deployment/" + controllerName,
		"Role/" + eventsRoleName,
		"RoleBinding/" + eventsRoleName,
		"ServiceAccount/" + agentName,
		"ServiceAccount/" + controllerName,
	}
	if generatedRoles(t)["Role"] != nil {
		want = append(want, "Role/"+controllerName, "RoleBinding/"+controllerName)
		slices.Sort(want)
	}
	if got := r.names(); !slices.Equal(got, want) {
		t.Errorf("rendered objects:\n got %v\nwant %v", got, want)
	}

	for _, o := range r.Objects {
		clusterScoped := strings.HasPrefix(o.Kind, "Cluster") || o.Kind == "CustomResourceDefinition"
		if !clusterScoped && o.Namespace != releaseNamespace {
			t.Errorf("%s %s has namespace %q, want the release namespace %q", o.Kind, o.Name, o.Namespace, releaseNamespace)
		}
	}
}

func TestDefaultConfigMatchesControllerDefaults(t *testing.T) {
	r := render(t, nil)
	got := loadRenderedConfig(t, r, configMapName, "")

	// The chart writes every field out, so the controller's own defaults must give the same
	// config, apart from what only the chart sets: the image and the agent's resources.
	want := controllers.Config{Namespace: releaseNamespace}
	want.Default()
	want.Agent.Image = "reaper:0.1.0"
	want.Agent.Resources = got.Agent.Resources
	if !reflect.DeepEqual(got, want) {
		gotYAML, _ := yaml.Marshal(got)
		wantYAML, _ := yaml.Marshal(want)
		t.Errorf("rendered config differs from the controller's defaults:\n got:\n%s\nwant:\n%s", gotYAML, wantYAML)
	}
	if got.Agent.Resources.Limits.Memory().String() != "128Mi" {
		t.Errorf("agent memory limit = %s, want 128Mi", got.Agent.Resources.Limits.Memory())
	}
}

func TestEdgeValuesConfig(t *testing.T) {
	cases := []struct {
		name   string
		values map[string]any
		check  func(t *testing.T, cfg controllers.Config)
	}{
		{
			name:   "protected class off",
			values: values(map[string]any{"runtimeClasses.protected.enabled": false}),
			check: func(t *testing.T, cfg controllers.Config) {
				if *cfg.RuntimeClasses.ProtectedName != "" {
					t.Errorf("protectedName = %q, want empty", *cfg.RuntimeClasses.ProtectedName)
				}
			},
		},
		{
			name:   "admission off",
			values: values(map[string]any{"admission.enabled": false}),
			check: func(t *testing.T, cfg controllers.Config) {
				if *cfg.Admission.Enabled {
					t.Error("admission.enabled = true, want false")
				}
			},
		},
		{
			name: "custom names and label",
			values: values(map[string]any{
				"runtimeClasses.name":              "hostproc",
				"runtimeClasses.handler":           "hostproc-handler",
				"runtimeClasses.protected.name":    "hostproc-ro",
				"runtimeClasses.protected.handler": "hostproc-ro-handler",
				"admission.policyName":             "hostproc-policy",
				"admission.namespaceLabel":         "example.com/hostproc",
				"agent.name":                       "hostproc-agent",
				"agent.serviceAccount.name":        "hostproc-agent-sa",
			}),
			check: func(t *testing.T, cfg controllers.Config) {
				rc := cfg.RuntimeClasses
				got := []string{rc.Name, rc.Handler, *rc.ProtectedName, rc.ProtectedHandler,
					cfg.Admission.PolicyName, cfg.Admission.NamespaceLabel, cfg.Agent.Name, cfg.Agent.ServiceAccountName}
				want := []string{"hostproc", "hostproc-handler", "hostproc-ro", "hostproc-ro-handler",
					"hostproc-policy", "example.com/hostproc", "hostproc-agent", "hostproc-agent-sa"}
				if !slices.Equal(got, want) {
					t.Errorf("names = %v, want %v", got, want)
				}
			},
		},
		{
			name: "node selection and agent settings",
			values: map[string]any{
				"nodeSelector": map[string]any{"example.com/hpc": "true"},
				"agent": map[string]any{
					"maxUnavailable":    "25%",
					"restartMethod":     "signal",
					"containerdConfig":  "/var/lib/rancher/k3s/agent/etc/containerd/config.toml",
					"containerdPIDFile": "/run/containerd/containerd.pid",
					"installDir":        "/var/lib/reaper/bin",
					"hostPaths":         []any{"/var/lib/reaper", "/run/containerd"},
					"resyncPeriod":      "90s",
					"priorityClassName": "",
					"tolerations":       []any{},
					"extraArgs":         []any{"--zap-log-level=debug"},
					"image":             map[string]any{"repository": "registry.example/reaper-agent", "tag": "v9"},
				},
				"imagePullSecrets": []any{map[string]any{"name": "registry-key"}},
			},
			check: func(t *testing.T, cfg controllers.Config) {
				a := cfg.Agent
				if cfg.NodeSelector["example.com/hpc"] != "true" || len(cfg.NodeSelector) != 1 {
					t.Errorf("nodeSelector = %v", cfg.NodeSelector)
				}
				if *a.MaxUnavailable != intstr.FromString("25%") {
					t.Errorf("maxUnavailable = %v, want 25%%", a.MaxUnavailable)
				}
				if a.RestartMethod != reaperv1alpha1.RestartSignal {
					t.Errorf("restartMethod = %q", a.RestartMethod)
				}
				if a.ContainerdConfig != "/var/lib/rancher/k3s/agent/etc/containerd/config.toml" || a.ContainerdPIDFile != "/run/containerd/containerd.pid" {
					t.Errorf("containerdConfig, containerdPIDFile = %q, %q", a.ContainerdConfig, a.ContainerdPIDFile)
				}
				if a.InstallDir != "/var/lib/reaper/bin" || !slices.Equal(a.HostPaths, []string{"/var/lib/reaper", "/run/containerd"}) {
					t.Errorf("installDir, hostPaths = %q, %v", a.InstallDir, a.HostPaths)
				}
				if a.ResyncPeriod.Duration.String() != "1m30s" {
					t.Errorf("resyncPeriod = %v, want 1m30s", a.ResyncPeriod.Duration)
				}
				if *a.PriorityClassName != "" {
					t.Errorf("priorityClassName = %q, want empty", *a.PriorityClassName)
				}
				if a.Tolerations == nil || len(a.Tolerations) != 0 {
					t.Errorf("tolerations = %#v, want an empty list, not the default", a.Tolerations)
				}
				if !slices.Equal(a.ExtraArgs, []string{"--zap-log-level=debug"}) {
					t.Errorf("extraArgs = %v", a.ExtraArgs)
				}
				if a.Image != "registry.example/reaper-agent:v9" {
					t.Errorf("agent image = %q", a.Image)
				}
				if len(a.ImagePullSecrets) != 1 || a.ImagePullSecrets[0].Name != "registry-key" {
					t.Errorf("imagePullSecrets = %v", a.ImagePullSecrets)
				}
			},
		},
		{
			name:   "image digest",
			values: values(map[string]any{"image.repository": "registry.example/reaper", "image.digest": "sha256:" + strings.Repeat("ab", 32)}),
			check: func(t *testing.T, cfg controllers.Config) {
				if want := "registry.example/reaper@sha256:" + strings.Repeat("ab", 32); cfg.Agent.Image != want {
					t.Errorf("agent image = %q, want %q", cfg.Agent.Image, want)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, loadRenderedConfig(t, render(t, tc.values), configMapName, ""))
		})
	}
}

func TestCRDSwitchAndKeepPolicy(t *testing.T) {
	r := render(t, nil)
	var crd apiextensionsv1.CustomResourceDefinition
	decode(t, r.find(t, "CustomResourceDefinition", crdName), &crd)
	if crd.Annotations["helm.sh/resource-policy"] != "keep" {
		t.Errorf("CRD annotations = %v, want helm.sh/resource-policy: keep", crd.Annotations)
	}

	// The rendered CRD must be the generated one: only metadata may differ.
	source, err := os.ReadFile("../../config/crd/bases/reaper.dev_reapernodes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var generated apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(source, &generated); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(crd.Spec, generated.Spec) {
		t.Error("the rendered CRD's spec differs from config/crd/bases/reaper.dev_reapernodes.yaml")
	}

	r = render(t, values(map[string]any{"crds.keep": false}))
	var unkept apiextensionsv1.CustomResourceDefinition
	decode(t, r.find(t, "CustomResourceDefinition", crdName), &unkept)
	if _, ok := unkept.Annotations["helm.sh/resource-policy"]; ok {
		t.Errorf("crds.keep=false: CRD still has helm.sh/resource-policy: %v", unkept.Annotations)
	}

	r = render(t, values(map[string]any{"crds.install": false}))
	if crds := r.ofKind("CustomResourceDefinition"); len(crds) != 0 {
		t.Errorf("crds.install=false rendered %d CRDs", len(crds))
	}
}

func TestChartCopiesMatchGenerated(t *testing.T) {
	pairs := map[string]string{"../../config/rbac/role.yaml": "../../charts/reaper/files/rbac/controller-role.yaml"}
	sources, err := filepath.Glob("../../config/crd/bases/*.yaml")
	if err != nil || len(sources) == 0 {
		t.Fatalf("no CRDs in config/crd/bases: %v", err)
	}
	for _, source := range sources {
		pairs[source] = "../../charts/reaper/files/crds/" + filepath.Base(source)
	}
	copies, err := filepath.Glob("../../charts/reaper/files/crds/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(copies) != len(sources) {
		t.Errorf("charts/reaper/files/crds has %d files, config/crd/bases has %d; run hack/chart-sync.sh", len(copies), len(sources))
	}

	for source, copied := range pairs {
		want, err := os.ReadFile(source)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(copied)
		if err != nil {
			t.Errorf("read the chart's copy of %s: %v; run hack/chart-sync.sh", source, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s; run hack/chart-sync.sh", copied, source)
		}
	}
}

// generatedRoles returns the roles of config/rbac/role.yaml by kind: the ClusterRole and, when
// a marker names a namespace, the Role.
func generatedRoles(t *testing.T) map[string]*rbacv1.ClusterRole {
	t.Helper()
	source, err := os.ReadFile("../../config/rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]*rbacv1.ClusterRole{}
	for _, doc := range splitObjects(t, string(source)) {
		var role rbacv1.ClusterRole
		decode(t, doc, &role)
		roles[doc.Kind] = &role
	}
	if roles["ClusterRole"] == nil {
		t.Fatal("config/rbac/role.yaml contains no ClusterRole")
	}
	return roles
}

func TestControllerRulesMatchGenerated(t *testing.T) {
	r := render(t, nil)
	for kind, generated := range generatedRoles(t) {
		var rendered rbacv1.ClusterRole
		decode(t, r.find(t, kind, controllerName), &rendered)
		if !reflect.DeepEqual(rendered.Rules, generated.Rules) {
			t.Errorf("controller %s rules differ from config/rbac/role.yaml:\n got %v\nwant %v", kind, rendered.Rules, generated.Rules)
		}

		var binding rbacv1.RoleBinding
		decode(t, r.find(t, kind+"Binding", controllerName), &binding)
		wantSubject := rbacv1.Subject{Kind: "ServiceAccount", Name: controllerName, Namespace: releaseNamespace}
		if binding.RoleRef.Kind != kind || binding.RoleRef.Name != controllerName || !slices.Equal(binding.Subjects, []rbacv1.Subject{wantSubject}) {
			t.Errorf("controller %sBinding = %v -> %v", kind, binding.Subjects, binding.RoleRef)
		}
	}
}

func TestAgentRBACExactRules(t *testing.T) {
	r := render(t, nil)
	var role rbacv1.ClusterRole
	decode(t, r.find(t, "ClusterRole", agentName), &role)

	want := []rbacv1.PolicyRule{
		{APIGroups: []string{"reaper.dev"}, Resources: []string{"reapernodes"}, Verbs: []string{"get", "list", "watch", "patch", "update"}},
		{APIGroups: []string{"reaper.dev"}, Resources: []string{"reapernodes/status"}, Verbs: []string{"get", "patch", "update"}},
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
	if !reflect.DeepEqual(role.Rules, want) {
		t.Errorf("agent ClusterRole rules:\n got %v\nwant %v", role.Rules, want)
	}

	var binding rbacv1.ClusterRoleBinding
	decode(t, r.find(t, "ClusterRoleBinding", agentName), &binding)
	wantSubject := rbacv1.Subject{Kind: "ServiceAccount", Name: agentName, Namespace: releaseNamespace}
	if binding.RoleRef.Name != agentName || !slices.Equal(binding.Subjects, []rbacv1.Subject{wantSubject}) {
		t.Errorf("agent ClusterRoleBinding = %v -> %v", binding.Subjects, binding.RoleRef)
	}

	// No other binding may give the agent's ServiceAccount more.
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, o := range r.ofKind(kind) {
			var b rbacv1.RoleBinding
			decode(t, o, &b)
			if o.Name != agentName && slices.Contains(b.Subjects, wantSubject) {
				t.Errorf("%s %s also binds the agent's ServiceAccount", kind, o.Name)
			}
		}
	}
}

func TestSelectorsUseStableLabels(t *testing.T) {
	chart := loadChart(t)
	first, err := renderChart(chart, nil, kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	chart.Metadata.Version = "9.9.9"
	chart.Metadata.AppVersion = "9.9.9"
	upgraded, err := renderChart(chart, nil, kubeVersion)
	if err != nil {
		t.Fatal(err)
	}

	selector := func(manifest string) *appsv1.Deployment {
		r := rendering{Objects: splitObjects(t, manifest)}
		var d appsv1.Deployment
		decode(t, r.find(t, "Deployment", controllerName), &d)
		return &d
	}
	before, after := selector(first.Manifest), selector(upgraded.Manifest)

	for key := range before.Spec.Selector.MatchLabels {
		if !slices.Contains(stableLabels, key) {
			t.Errorf("Deployment selector uses label %q; only %v are stable", key, stableLabels)
		}
	}
	for key, value := range before.Spec.Selector.MatchLabels {
		if before.Spec.Template.Labels[key] != value {
			t.Errorf("pod template lacks selector label %s=%s", key, value)
		}
	}
	if len(before.Spec.Selector.MatchExpressions) != 0 {
		t.Errorf("Deployment selector has match expressions %v", before.Spec.Selector.MatchExpressions)
	}
	if !reflect.DeepEqual(before.Spec.Selector, after.Spec.Selector) {
		t.Errorf("Deployment selector changes with the chart version: %v -> %v", before.Spec.Selector, after.Spec.Selector)
	}
}

func TestControllerDeployment(t *testing.T) {
	r := render(t, nil)
	var d appsv1.Deployment
	decode(t, r.find(t, "Deployment", controllerName), &d)
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("controller pod has %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]

	if c.Image != "reaper:0.1.0" {
		t.Errorf("image = %q, want reaper:0.1.0", c.Image)
	}
	for _, arg := range []string{"--config=/etc/reaper/config.yaml", "--leader-elect=true", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("args %v lack %s", c.Args, arg)
		}
	}
	wantEnv := []corev1.EnvVar{
		{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		{Name: "REAPER_IMAGE", Value: "reaper:0.1.0"},
	}
	if !reflect.DeepEqual(c.Env, wantEnv) {
		t.Errorf("env = %v, want POD_NAMESPACE from metadata.namespace and REAPER_IMAGE", c.Env)
	}

	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["metrics"] != 8080 || ports["health"] != 8081 {
		t.Errorf("ports = %v, want metrics 8080 and health 8081", ports)
	}
	for name, probe := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != name || probe.HTTPGet.Port != intstr.FromString("health") {
			t.Errorf("probe %s = %v, want HTTP GET on the health port", name, probe)
		}
	}

	if pod.ServiceAccountName != controllerName {
		t.Errorf("serviceAccountName = %q", pod.ServiceAccountName)
	}
	if len(pod.Volumes) != 1 || pod.Volumes[0].ConfigMap == nil || pod.Volumes[0].ConfigMap.Name != configMapName {
		t.Errorf("volumes = %v, want the ConfigMap %s", pod.Volumes, configMapName)
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/etc/reaper" || !c.VolumeMounts[0].ReadOnly {
		t.Errorf("volume mounts = %v, want /etc/reaper read-only", c.VolumeMounts)
	}
	checkRestricted(t, "controller", pod)
}

func TestConfigChecksumRollsController(t *testing.T) {
	checksum := func(v map[string]any) string {
		var d appsv1.Deployment
		decode(t, render(t, v).find(t, "Deployment", controllerName), &d)
		return d.Spec.Template.Annotations["checksum/config"]
	}
	base := checksum(nil)
	if base == "" {
		t.Fatal("pod template has no checksum/config annotation")
	}
	if changed := checksum(values(map[string]any{"agent.restartMethod": "none"})); changed == base {
		t.Error("checksum/config stays the same when the config changes, so the controller would not restart")
	}
	if same := checksum(values(map[string]any{"controller.replicas": 2})); same != base {
		t.Error("checksum/config changes with a value that is not in the config")
	}
}

func TestTeardownHook(t *testing.T) {
	r := render(t, values(map[string]any{"teardown.timeout": "7m"}))
	hook := r.hook(t, "Job", teardownName)
	if len(hook.Events) != 1 || hook.Events[0] != "pre-delete" {
		t.Errorf("hook events = %v, want [pre-delete]", hook.Events)
	}
	policies := make([]string, 0, len(hook.DeletePolicies))
	for _, p := range hook.DeletePolicies {
		policies = append(policies, string(p))
	}
	slices.Sort(policies)
	if !slices.Equal(policies, []string{"before-hook-creation", "hook-succeeded"}) {
		t.Errorf("hook delete policies = %v, want before-hook-creation and hook-succeeded", policies)
	}

	var job batchv1.Job
	decode(t, object{Kind: hook.Kind, Name: hook.Name, YAML: []byte(hook.Manifest)}, &job)
	if job.Namespace != releaseNamespace {
		t.Errorf("teardown Job namespace = %q", job.Namespace)
	}
	pod := job.Spec.Template.Spec
	if pod.ServiceAccountName != controllerName {
		t.Errorf("teardown runs as %q, want the controller's ServiceAccount %s", pod.ServiceAccountName, controllerName)
	}
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy = %q, want Never", pod.RestartPolicy)
	}
	c := pod.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "teardown" {
		t.Errorf("args = %v, want the teardown subcommand first", c.Args)
	}
	for _, arg := range []string{"--config=/etc/reaper/config.yaml", "--timeout=7m", "--deployment=" + controllerName} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("teardown args %v lack %s", c.Args, arg)
		}
	}
	checkRestricted(t, "teardown", pod)

	r = render(t, values(map[string]any{"teardown.enabled": false}))
	if len(r.Hooks) != 0 {
		t.Errorf("teardown.enabled=false still renders %d hooks", len(r.Hooks))
	}
	if !strings.Contains(r.Notes, "leaves the runtime") {
		t.Error("NOTES do not warn that uninstall leaves the runtime on the nodes")
	}
}

// checkRestricted checks that a pod meets the restricted Pod Security level.
func checkRestricted(t *testing.T, name string, pod corev1.PodSpec) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("%s pod: runAsNonRoot is not true", name)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s pod: seccomp profile is not RuntimeDefault", name)
	}
	if pod.HostPID || pod.HostNetwork || pod.HostIPC || len(pod.Volumes) > 0 && pod.Volumes[0].HostPath != nil {
		t.Errorf("%s pod uses a host namespace or hostPath", name)
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s container %s has no securityContext", name, c.Name)
			continue
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s container %s: allowPrivilegeEscalation is not false", name, c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s container %s: readOnlyRootFilesystem is not true", name, c.Name)
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s container %s: capabilities = %v, want drop ALL and add none", name, c.Name, sc.Capabilities)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s container %s is privileged", name, c.Name)
		}
	}
}

func TestNamesFollowRelease(t *testing.T) {
	r := render(t, values(map[string]any{"fullnameOverride": "hpc-runtime", "controller.serviceAccount.name": "hpc-controller-sa"}))
	for _, name := range []string{"Deployment/hpc-runtime-controller", "ClusterRole/hpc-runtime-controller", "ClusterRole/hpc-runtime-agent",
		"ClusterRoleBinding/hpc-runtime-controller", "ClusterRoleBinding/hpc-runtime-agent",
		"ConfigMap/hpc-runtime-controller-config", "ServiceAccount/hpc-controller-sa"} {
		kind, objectName, _ := strings.Cut(name, "/")
		r.find(t, kind, objectName)
	}
	var d appsv1.Deployment
	decode(t, r.find(t, "Deployment", "hpc-runtime-controller"), &d)
	if d.Spec.Template.Spec.ServiceAccountName != "hpc-controller-sa" {
		t.Errorf("controller runs as %q, want hpc-controller-sa", d.Spec.Template.Spec.ServiceAccountName)
	}
	var job batchv1.Job
	hook := r.hook(t, "Job", "hpc-runtime-teardown")
	decode(t, object{Kind: hook.Kind, Name: hook.Name, YAML: []byte(hook.Manifest)}, &job)
	if !slices.Contains(job.Spec.Template.Spec.Containers[0].Args, "--deployment=hpc-runtime-controller") {
		t.Errorf("teardown args %v do not name the renamed Deployment", job.Spec.Template.Spec.Containers[0].Args)
	}
}

func TestEveryObjectDecodesStrictly(t *testing.T) {
	types := map[string]func() any{
		"ClusterRole":              func() any { return &rbacv1.ClusterRole{} },
		"ClusterRoleBinding":       func() any { return &rbacv1.ClusterRoleBinding{} },
		"Role":                     func() any { return &rbacv1.Role{} },
		"RoleBinding":              func() any { return &rbacv1.RoleBinding{} },
		"ConfigMap":                func() any { return &corev1.ConfigMap{} },
		"ServiceAccount":           func() any { return &corev1.ServiceAccount{} },
		"Deployment":               func() any { return &appsv1.Deployment{} },
		"CustomResourceDefinition": func() any { return &apiextensionsv1.CustomResourceDefinition{} },
	}
	full := values(map[string]any{
		"controller.podAnnotations":    map[string]any{"example.com/a": "b"},
		"controller.podLabels":         map[string]any{"team": "hpc"},
		"controller.nodeSelector":      map[string]any{"kubernetes.io/os": "linux"},
		"controller.tolerations":       []any{map[string]any{"key": "example.com/infra", "operator": "Exists", "effect": "NoSchedule"}},
		"controller.affinity":          map[string]any{"nodeAffinity": map[string]any{}},
		"controller.priorityClassName": "system-cluster-critical",
		"controller.extraArgs":         []any{"--zap-log-level=debug"},
		"imagePullSecrets":             []any{map[string]any{"name": "registry-key"}},
	})
	for name, v := range map[string]map[string]any{"defaults": nil, "every optional value": full} {
		t.Run(name, func(t *testing.T) {
			r := render(t, v)
			for _, o := range r.Objects {
				newObject, ok := types[o.Kind]
				if !ok {
					t.Errorf("no type to decode %s %s into; add it to this test", o.Kind, o.Name)
					continue
				}
				decode(t, o, newObject())
			}
		})
	}
}

func TestNotesGuideFirstSteps(t *testing.T) {
	r := render(t, nil)
	for _, want := range []string{
		"kubectl label namespace reaper-system pod-security.kubernetes.io/enforce=privileged",
		"kubectl get reapernodes",
		"kubectl label namespace NAMESPACE reaper.dev/allowed=true",
		`"runtimeClassName":"reaper"`,
		"helm uninstall reaper -n reaper-system --timeout",
	} {
		if !strings.Contains(r.Notes, want) {
			t.Errorf("NOTES lack %q:\n%s", want, r.Notes)
		}
	}

	r = render(t, values(map[string]any{"admission.enabled": false, "runtimeClasses.protected.enabled": false}))
	if !strings.Contains(r.Notes, "WARNING: admission.enabled is false") {
		t.Errorf("NOTES do not warn that admission is off:\n%s", r.Notes)
	}
	if strings.Contains(r.Notes, "reaper-protected") {
		t.Error("NOTES name reaper-protected although the protected RuntimeClass is off")
	}
}

func TestOldKubernetesRejected(t *testing.T) {
	_, err := renderChart(loadChart(t), nil, "v1.29.9")
	if err == nil || !strings.Contains(err.Error(), "kubeVersion") {
		t.Errorf("render for Kubernetes v1.29.9: error %v, want the kubeVersion constraint", err)
	}
}
