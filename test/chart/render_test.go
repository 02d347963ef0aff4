package chart

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"sigs.k8s.io/yaml"

	"reaper.dev/reaper/controllers"
)

const (
	chartDir         = "../../charts/reaper"
	releaseName      = "reaper"
	releaseNamespace = "reaper-system"
	// kubeVersion is the Kubernetes version the chart renders for, the one envtest runs.
	kubeVersion = "v1.37.2"
)

// object is one rendered manifest: its kind, name and namespace, and the YAML to decode
// strictly into its type.
type object struct {
	Kind      string
	Name      string
	Namespace string
	Source    string
	YAML      []byte
}

// rendering is what helm install would create: the manifests, the hooks and the notes.
type rendering struct {
	Objects []object
	Hooks   []*releasev1.Hook
	Notes   string
}

// loadChart loads charts/reaper from disk.
func loadChart(t *testing.T) *chartv2.Chart {
	t.Helper()
	chart, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart %s: %v", chartDir, err)
	}
	return chart
}

// renderChart renders chart as `helm install --dry-run=client --kube-version=VERSION` does,
// schema check included.
func renderChart(chart *chartv2.Chart, values map[string]any, version string) (*releasev1.Release, error) {
	kube, err := common.ParseKubeVersion(version)
	if err != nil {
		return nil, fmt.Errorf("parse Kubernetes version %q: %w", version, err)
	}
	install := action.NewInstall(action.NewConfiguration())
	install.KubeVersion = kube
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = releaseName
	install.Namespace = releaseNamespace
	install.Replace = true

	released, err := install.RunWithContext(context.Background(), chart, values)
	if err != nil {
		return nil, err
	}
	rel, ok := released.(*releasev1.Release)
	if !ok {
		return nil, fmt.Errorf("helm returned a release of type %T, expected *v1.Release", released)
	}
	return rel, nil
}

// render renders the chart with values and fails the test on any error.
func render(t *testing.T, values map[string]any) rendering {
	t.Helper()
	rel, err := renderChart(loadChart(t), values, kubeVersion)
	if err != nil {
		t.Fatalf("render chart with values %v: %v", values, err)
	}
	return rendering{Objects: splitObjects(t, rel.Manifest), Hooks: rel.Hooks, Notes: rel.Info.Notes}
}

// splitObjects splits a rendered manifest into its objects, in a stable order.
func splitObjects(t *testing.T, manifest string) []object {
	t.Helper()
	var objects []object
	for _, doc := range releaseutil.SplitManifests(manifest) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("parse rendered manifest: %v\n%s", err, doc)
		}
		source := ""
		if first, _, ok := strings.Cut(doc, "\n"); ok && strings.HasPrefix(first, "# Source: ") {
			source = strings.TrimPrefix(first, "# Source: ")
		}
		objects = append(objects, object{
			Kind: head.Kind, Name: head.Metadata.Name, Namespace: head.Metadata.Namespace,
			Source: source, YAML: []byte(doc),
		})
	}
	sort.Slice(objects, func(i, j int) bool {
		return objects[i].Kind+"/"+objects[i].Name < objects[j].Kind+"/"+objects[j].Name
	})
	return objects
}

// find returns the one object of kind and name, and fails the test when there is none.
func (r rendering) find(t *testing.T, kind, name string) object {
	t.Helper()
	for _, o := range r.Objects {
		if o.Kind == kind && o.Name == name {
			return o
		}
	}
	t.Fatalf("no %s %q among the rendered objects %v", kind, name, r.names())
	return object{}
}

// ofKind returns every object of kind.
func (r rendering) ofKind(kind string) []object {
	var found []object
	for _, o := range r.Objects {
		if o.Kind == kind {
			found = append(found, o)
		}
	}
	return found
}

func (r rendering) names() []string {
	names := make([]string, 0, len(r.Objects))
	for _, o := range r.Objects {
		names = append(names, o.Kind+"/"+o.Name)
	}
	return names
}

// decode decodes an object strictly into out, so a field that its type lacks fails the test.
func decode(t *testing.T, o object, out any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(o.YAML, out); err != nil {
		t.Fatalf("decode %s %s strictly into %T: %v\n%s", o.Kind, o.Name, out, err, o.YAML)
	}
}

// hook returns the rendered hook of kind and name.
func (r rendering) hook(t *testing.T, kind, name string) *releasev1.Hook {
	t.Helper()
	for _, h := range r.Hooks {
		if h.Kind == kind && h.Name == name {
			return h
		}
	}
	t.Fatalf("no hook %s %q; hooks: %d", kind, name, len(r.Hooks))
	return nil
}

// loadRenderedConfig writes the config.yaml of the rendered ConfigMap to a file and loads it
// with the controller's own strict loader, as a controller whose image is image would.
func loadRenderedConfig(t *testing.T, r rendering, configMapName, image string) controllers.Config {
	t.Helper()
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(r.find(t, "ConfigMap", configMapName).YAML, &cm); err != nil {
		t.Fatalf("parse ConfigMap %s: %v", configMapName, err)
	}
	text, ok := cm.Data["config.yaml"]
	if !ok {
		t.Fatalf("ConfigMap %s has no config.yaml key; keys: %v", configMapName, cm.Data)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	// An empty default namespace makes the load fail unless the file names one.
	cfg, err := controllers.LoadConfig(path, "", image)
	if err != nil {
		t.Fatalf("controllers.LoadConfig rejects the rendered config: %v\n%s", err, text)
	}
	return cfg
}

// loadConfig calls controllers.LoadConfig in either of its forms: (path, namespace), and
// (path, namespace, image) where image is the controller's --image flag.
// values builds a values map from dotted paths, such as "agent.restartMethod": "none".
func values(pairs map[string]any) map[string]any {
	root := map[string]any{}
	for path, value := range pairs {
		keys := strings.Split(path, ".")
		node := root
		for _, key := range keys[:len(keys)-1] {
			child, ok := node[key].(map[string]any)
			if !ok {
				child = map[string]any{}
				node[key] = child
			}
			node = child
		}
		node[keys[len(keys)-1]] = value
	}
	return root
}
