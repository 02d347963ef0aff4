package chart

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"reaper.dev/reaper/controllers"
)

// kustomize builds the kustomization in dir as `kubectl apply -k dir` does.
func kustomize(t *testing.T, dir string) rendering {
	t.Helper()
	kustomizer := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := kustomizer.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	manifest, err := resources.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: write YAML: %v", dir, err)
	}
	return rendering{Objects: splitObjects(t, string(manifest))}
}

func TestKustomizeDefaultObjects(t *testing.T) {
	k := kustomize(t, "../../config/default")

	want := []string{
		"ClusterRole/" + agentName,
		"ClusterRole/" + controllerName,
		"ClusterRoleBinding/" + agentName,
		"ClusterRoleBinding/" + controllerName,
		"ConfigMap/" + configMapName,
		"CustomResourceDefinition/" + crdName,
		"Deployment/" + controllerName,
		"Namespace/" + releaseNamespace,
		"Role/" + controllerName,
		"Role/" + eventsRoleName,
		"RoleBinding/" + controllerName,
		"RoleBinding/" + eventsRoleName,
		"ServiceAccount/" + agentName,
		"ServiceAccount/" + controllerName,
	}
	if got := k.names(); !slices.Equal(got, want) {
		t.Errorf("config/default objects:\n got %v\nwant %v", got, want)
	}

	var ns corev1.Namespace
	decode(t, k.find(t, "Namespace", releaseNamespace), &ns)
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("namespace labels = %v, want pod-security.kubernetes.io/enforce=privileged for the agent's hostPID and hostPath", ns.Labels)
	}

	var d appsv1.Deployment
	decode(t, k.find(t, "Deployment", controllerName), &d)
	container := d.Spec.Template.Spec.Containers[0]
	if container.Image != "reaper:dev" {
		t.Errorf("controller image = %q, want reaper:dev from the images: field", container.Image)
	}
	if image := envValue(container, "REAPER_IMAGE"); image != "reaper:dev" {
		t.Errorf("REAPER_IMAGE = %q, want reaper:dev, the image that replacements: copies", image)
	}
}

func TestKustomizeMatchesChart(t *testing.T) {
	k := kustomize(t, "../../config/default")
	h := render(t, nil)

	t.Run("CRD", func(t *testing.T) {
		var fromKustomize, fromChart apiextensionsv1.CustomResourceDefinition
		decode(t, k.find(t, "CustomResourceDefinition", crdName), &fromKustomize)
		decode(t, h.find(t, "CustomResourceDefinition", crdName), &fromChart)
		if !reflect.DeepEqual(fromKustomize.Spec, fromChart.Spec) {
			t.Error("the CRD of config/default differs from the chart's")
		}
	})

	for _, role := range []struct{ kind, name string }{
		{"ClusterRole", controllerName}, {"ClusterRole", agentName}, {"Role", eventsRoleName},
	} {
		t.Run(role.kind+" "+role.name, func(t *testing.T) {
			var fromKustomize, fromChart rbacv1.ClusterRole
			decode(t, k.find(t, role.kind, role.name), &fromKustomize)
			decode(t, h.find(t, role.kind, role.name), &fromChart)
			if !reflect.DeepEqual(fromKustomize.Rules, fromChart.Rules) {
				t.Errorf("rules differ:\nkustomize %v\n    chart %v", fromKustomize.Rules, fromChart.Rules)
			}
		})
	}

	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, o := range h.ofKind(kind) {
			t.Run(kind+" "+o.Name, func(t *testing.T) {
				var fromKustomize, fromChart rbacv1.RoleBinding
				decode(t, k.find(t, kind, o.Name), &fromKustomize)
				decode(t, o, &fromChart)
				if !reflect.DeepEqual(fromKustomize.Subjects, fromChart.Subjects) || fromKustomize.RoleRef != fromChart.RoleRef {
					t.Errorf("binding differs: kustomize %v -> %v, chart %v -> %v",
						fromKustomize.Subjects, fromKustomize.RoleRef, fromChart.Subjects, fromChart.RoleRef)
				}
			})
		}
	}

	t.Run("Deployment", func(t *testing.T) {
		var fromKustomize, fromChart appsv1.Deployment
		decode(t, k.find(t, "Deployment", controllerName), &fromKustomize)
		decode(t, h.find(t, "Deployment", controllerName), &fromChart)
		kPod, hPod := fromKustomize.Spec.Template.Spec, fromChart.Spec.Template.Spec
		// Only the image differs: the chart's default tag is its appVersion.
		for _, pod := range []*corev1.PodSpec{&kPod, &hPod} {
			pod.Containers[0].Image = ""
			setEnvValue(&pod.Containers[0], "REAPER_IMAGE", "")
		}
		if !reflect.DeepEqual(kPod, hPod) {
			kYAML, _ := yaml.Marshal(kPod)
			hYAML, _ := yaml.Marshal(hPod)
			t.Errorf("pod specs differ:\nkustomize:\n%s\nchart:\n%s", kYAML, hYAML)
		}
		if !reflect.DeepEqual(fromKustomize.Spec.Selector, fromChart.Spec.Selector) {
			t.Errorf("selectors differ: kustomize %v, chart %v", fromKustomize.Spec.Selector, fromChart.Spec.Selector)
		}
	})

	t.Run("config", func(t *testing.T) {
		var d appsv1.Deployment
		decode(t, k.find(t, "Deployment", controllerName), &d)
		image := envValue(d.Spec.Template.Spec.Containers[0], "REAPER_IMAGE")
		fromKustomize := loadRenderedConfig(t, k, configMapName, image)
		fromChart := loadRenderedConfig(t, h, configMapName, "")
		// The chart names the agent's image in the config, and kustomize leaves it to the
		// controller's REAPER_IMAGE.
		fromKustomize.Agent.Image, fromChart.Agent.Image = "", ""
		if !reflect.DeepEqual(fromKustomize, fromChart) {
			kYAML, _ := yaml.Marshal(fromKustomize)
			hYAML, _ := yaml.Marshal(fromChart)
			t.Errorf("configs differ:\nkustomize:\n%s\nchart:\n%s", kYAML, hYAML)
		}
	})
}

func TestKustomizeTeardownMatchesHook(t *testing.T) {
	k := kustomize(t, "../../config/teardown")
	if got := k.names(); !slices.Equal(got, []string{"Job/" + teardownName}) {
		t.Fatalf("config/teardown objects = %v, want only Job/%s", got, teardownName)
	}
	var job batchv1.Job
	decode(t, k.find(t, "Job", teardownName), &job)
	if job.Namespace != releaseNamespace {
		t.Errorf("teardown Job namespace = %q, want %q", job.Namespace, releaseNamespace)
	}

	hook := render(t, values(map[string]any{"teardown.timeout": "10m"})).hook(t, "Job", teardownName)
	var fromChart batchv1.Job
	decode(t, object{Kind: hook.Kind, Name: hook.Name, YAML: []byte(hook.Manifest)}, &fromChart)
	kPod, hPod := job.Spec.Template.Spec, fromChart.Spec.Template.Spec
	if kPod.Containers[0].Image != "reaper:dev" {
		t.Errorf("teardown image = %q, want reaper:dev", kPod.Containers[0].Image)
	}
	kPod.Containers[0].Image, hPod.Containers[0].Image = "", ""
	if !reflect.DeepEqual(kPod, hPod) {
		kYAML, _ := yaml.Marshal(kPod)
		hYAML, _ := yaml.Marshal(hPod)
		t.Errorf("teardown pod specs differ:\nkustomize:\n%s\nchart:\n%s", kYAML, hYAML)
	}
}

func TestKustomizeConfigFileLoads(t *testing.T) {
	path := "../../config/manager/config.yaml"
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	cfg, err := controllers.LoadConfig(filepath.Clean(path), "", "reaper:dev")
	if err != nil {
		t.Fatalf("controllers.LoadConfig rejects %s: %v", path, err)
	}
	if cfg.Namespace != releaseNamespace {
		t.Errorf("namespace = %q, want %q", cfg.Namespace, releaseNamespace)
	}
}

// envValue returns the value of the environment variable name of container.
func envValue(container corev1.Container, name string) string {
	for _, env := range container.Env {
		if env.Name == name {
			return env.Value
		}
	}
	return ""
}

// setEnvValue sets the value of the environment variable name of container.
func setEnvValue(container *corev1.Container, name, value string) {
	for i := range container.Env {
		if container.Env[i].Name == name {
			container.Env[i].Value = value
		}
	}
}
