package chart

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// warningRecorder keeps the warnings that the API server returns, such as those of Pod
// Security admission in warn mode.
type warningRecorder struct {
	mu       sync.Mutex // guards warnings
	warnings []string
}

// HandleWarningHeader records one warning; it implements rest.WarningHandler.
func (w *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.warnings = append(w.warnings, text)
}

// take returns the warnings recorded since the last call.
func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	taken := w.warnings
	w.warnings = nil
	return taken
}

// startAPIServer starts etcd and kube-apiserver with envtest and returns an admin client, its
// rest.Config and the recorder of its warnings.
func startAPIServer(t *testing.T) (client.Client, *rest.Config, *warningRecorder) {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run make envtest-bins and export the folder it prints, or run make chart-test")
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})

	recorder := &warningRecorder{}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = recorder
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatalf("create client: %v", err)
	}
	return c, cfg, recorder
}

// createNamespace creates the release namespace with the privileged level that the agent
// needs, and the restricted level in warn mode, so that every pod template that breaks the
// restricted level returns a warning.
func createNamespace(ctx context.Context, t *testing.T, c client.Client) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: releaseNamespace,
		Labels: map[string]string{
			"pod-security.kubernetes.io/enforce": "privileged",
			"pod-security.kubernetes.io/warn":    "restricted",
		},
	}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace %s: %v", releaseNamespace, err)
	}
}

// createObjects creates the objects, CRDs first, and fails on any error or warning.
func createObjects(ctx context.Context, t *testing.T, c client.Client, warnings *warningRecorder, objects []object) {
	t.Helper()
	ordered := make([]object, 0, len(objects))
	for _, o := range objects {
		if o.Kind == "CustomResourceDefinition" {
			ordered = append([]object{o}, ordered...)
		} else {
			ordered = append(ordered, o)
		}
	}
	for _, o := range ordered {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(o.YAML, &u.Object); err != nil {
			t.Fatalf("parse %s %s: %v", o.Kind, o.Name, err)
		}
		if err := c.Create(ctx, u); err != nil {
			t.Errorf("the API server rejects %s %s: %v", o.Kind, o.Name, err)
		}
		for _, warning := range warnings.take() {
			t.Errorf("the API server warns about %s %s: %s", o.Kind, o.Name, warning)
		}
	}
}

func TestAPIServerAcceptsChart(t *testing.T) {
	ctx := context.Background()
	c, _, warnings := startAPIServer(t)
	createNamespace(ctx, t, c)

	r := render(t, nil)
	objects := r.Objects
	for _, hook := range r.Hooks {
		objects = append(objects, object{Kind: hook.Kind, Name: hook.Name, YAML: []byte(hook.Manifest)})
	}
	createObjects(ctx, t, c, warnings, objects)

	// A pod template that breaks the restricted level must draw a warning, or the checks above
	// prove nothing.
	privileged := true
	bad := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "privileged", Namespace: releaseNamespace},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "privileged"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "privileged"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "main", Image: "example", SecurityContext: &corev1.SecurityContext{Privileged: &privileged},
				}}},
			},
		},
	}
	if err := c.Create(ctx, bad); err != nil {
		t.Fatalf("create the privileged control Deployment: %v", err)
	}
	if got := warnings.take(); len(got) == 0 || !strings.Contains(strings.Join(got, " "), "restricted") {
		t.Errorf("a privileged Deployment drew the warnings %q, want a Pod Security warning about the restricted level", got)
	}
}

func TestAPIServerAcceptsKustomize(t *testing.T) {
	ctx := context.Background()
	c, _, warnings := startAPIServer(t)

	var objects []object
	for _, o := range kustomize(t, "../../config/default").Objects {
		if o.Kind != "Namespace" {
			objects = append(objects, o)
		}
	}
	createNamespace(ctx, t, c)
	createObjects(ctx, t, c, warnings, append(objects, kustomize(t, "../../config/teardown").Objects...))
}
