package v1alpha1_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"reaper.dev/reaper/api/v1alpha1"
)

// crdFile is the CRD that make generate writes from the markers of this package.
const crdFile = "../../config/crd/bases/reaper.dev_reapernodes.yaml"

func loadCRD(t *testing.T) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	data, err := os.ReadFile(crdFile)
	if err != nil {
		t.Fatalf("read the generated CRD (make generate writes it): %v", err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(data, crd); err != nil {
		t.Fatalf("decode %s: %v", crdFile, err)
	}
	return crd
}

// loadVersion returns the v1alpha1 version of the generated CRD.
func loadVersion(t *testing.T) *apiextensionsv1.CustomResourceDefinitionVersion {
	t.Helper()
	crd := loadCRD(t)
	for i := range crd.Spec.Versions {
		if crd.Spec.Versions[i].Name == v1alpha1.GroupVersion.Version {
			return &crd.Spec.Versions[i]
		}
	}
	t.Fatalf("%s has no version %s", crdFile, v1alpha1.GroupVersion.Version)
	return nil
}

// schemaAt returns the schema of the field at the dotted path, such as status.phase.
func schemaAt(t *testing.T, version *apiextensionsv1.CustomResourceDefinitionVersion, path string) apiextensionsv1.JSONSchemaProps {
	t.Helper()
	schema := *version.Schema.OpenAPIV3Schema
	for _, name := range strings.Split(path, ".") {
		property, ok := schema.Properties[name]
		if !ok {
			t.Fatalf("the CRD schema has no field %s (missing %q)", path, name)
		}
		schema = property
	}
	return schema
}

func TestCRDScopeAndNames(t *testing.T) {
	crd := loadCRD(t)

	if crd.Name != "reapernodes.reaper.dev" {
		t.Errorf("name = %q, want reapernodes.reaper.dev", crd.Name)
	}
	if crd.Spec.Group != v1alpha1.GroupVersion.Group {
		t.Errorf("group = %q, want %q", crd.Spec.Group, v1alpha1.GroupVersion.Group)
	}
	if crd.Spec.Scope != apiextensionsv1.ClusterScoped {
		t.Errorf("scope = %q, want %q", crd.Spec.Scope, apiextensionsv1.ClusterScoped)
	}
	if crd.Spec.Names.Kind != "ReaperNode" {
		t.Errorf("kind = %q, want ReaperNode", crd.Spec.Names.Kind)
	}
}

func TestCRDVersionServedWithStatus(t *testing.T) {
	version := loadVersion(t)

	if !version.Served {
		t.Error("v1alpha1 is not served")
	}
	if !version.Storage {
		t.Error("v1alpha1 is not the storage version")
	}
	if version.Subresources == nil || version.Subresources.Status == nil {
		t.Error("v1alpha1 has no status subresource")
	}
}

func TestCRDPrinterColumns(t *testing.T) {
	want := []apiextensionsv1.CustomResourceColumnDefinition{
		{Name: "Phase", Type: "string", JSONPath: ".status.phase"},
		{Name: "Version", Type: "string", JSONPath: ".status.installedVersion"},
		{Name: "Containerd", Type: "string", JSONPath: ".status.containerd.version"},
		{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
	}
	got := loadVersion(t).AdditionalPrinterColumns

	if len(got) != len(want) {
		t.Fatalf("got %d printer columns, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		column := got[i]
		column.Description = ""
		if column != want[i] {
			t.Errorf("printer column %d = %+v, want %+v", i, column, want[i])
		}
	}
}

// kubectl shows <none> for a printer column whose JSONPath names no field, and reports no
// error, so a renamed field would go unnoticed.
func TestCRDPrinterColumnFieldsExist(t *testing.T) {
	version := loadVersion(t)
	for _, column := range version.AdditionalPrinterColumns {
		path := strings.TrimPrefix(column.JSONPath, ".")
		if strings.HasPrefix(path, "metadata.") {
			continue
		}
		schemaAt(t, version, path)
	}
}

func TestCRDEnums(t *testing.T) {
	tests := []struct {
		path string
		want []string
	}{
		{
			path: "status.phase",
			want: stringValues(v1alpha1.PhasePending, v1alpha1.PhaseInstalling, v1alpha1.PhaseReady,
				v1alpha1.PhaseDegraded, v1alpha1.PhaseUninstalling, v1alpha1.PhaseFailed),
		},
		{
			path: "spec.restartMethod",
			want: stringValues(v1alpha1.RestartAuto, v1alpha1.RestartSystemd, v1alpha1.RestartSignal,
				v1alpha1.RestartNone),
		},
		{
			path: "status.containerd.flavor",
			want: stringValues(v1alpha1.FlavorPlain, v1alpha1.FlavorK3s, v1alpha1.FlavorRKE2,
				v1alpha1.FlavorK0s, v1alpha1.FlavorMicroK8s),
		},
		{
			path: "status.containerd.cgroupDriver",
			want: stringValues(v1alpha1.CgroupDriverSystemd, v1alpha1.CgroupDriverCgroupfs),
		},
	}

	version := loadVersion(t)
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got := enumValues(t, schemaAt(t, version, tt.path))
			if !slices.Equal(got, tt.want) {
				t.Errorf("enum of %s = %q, want the Go constants %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestAddToScheme(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatalf("AddToScheme: %v", err)
	}

	for _, kind := range []string{"ReaperNode", "ReaperNodeList"} {
		if !scheme.Recognizes(v1alpha1.GroupVersion.WithKind(kind)) {
			t.Errorf("the scheme does not recognize %s", v1alpha1.GroupVersion.WithKind(kind))
		}
	}
}

// stringValues converts enum constants of a string type to strings.
func stringValues[T ~string](values ...T) []string {
	strs := make([]string, len(values))
	for i, value := range values {
		strs[i] = string(value)
	}
	return strs
}

// enumValues decodes the enum of a string schema.
func enumValues(t *testing.T, schema apiextensionsv1.JSONSchemaProps) []string {
	t.Helper()
	values := make([]string, len(schema.Enum))
	for i, raw := range schema.Enum {
		if err := json.Unmarshal(raw.Raw, &values[i]); err != nil {
			t.Fatalf("decode enum value %s: %v", raw.Raw, err)
		}
	}
	return values
}
