package chart

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// helmBinary returns the helm that hack/helm.sh builds, or $HELM.
func helmBinary(t *testing.T) string {
	t.Helper()
	path := os.Getenv("HELM")
	if path == "" {
		path = "../../.cache/helm-v4.3.2/bin/helm"
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("helm binary %s not found: %v; run hack/helm.sh, or make chart-test, which builds it", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// runHelm runs helm with args and an empty helm home, and returns its combined output.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestHelmLintStrict(t *testing.T) {
	cases := map[string][]string{
		"defaults": nil,
		"edge values": {
			"--set", "runtimeClasses.protected.enabled=false",
			"--set", "admission.enabled=false",
			"--set", "crds.install=false",
			"--set", "teardown.enabled=false",
			"--set", "agent.maxUnavailable=10%",
			"--set", "fullnameOverride=hpc-runtime",
		},
	}
	for name, extra := range cases {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", "--namespace", releaseNamespace, chartDir}, extra...)
			out, err := runHelm(t, args...)
			if err != nil {
				t.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

func TestHelmLintRejectsBadValues(t *testing.T) {
	out, err := runHelm(t, "lint", "--strict", chartDir, "--set", "agent.restartMethod=reboot")
	if err == nil {
		t.Fatalf("helm lint accepted agent.restartMethod=reboot:\n%s", out)
	}
	if !strings.Contains(out, "/agent/restartMethod") {
		t.Errorf("helm lint output does not name /agent/restartMethod:\n%s", out)
	}
}

// TestHelmTemplateMatchesLibrary checks that the helm binary renders what the library renders
// in these tests, so the tests cover what users get from helm install.
func TestHelmTemplateMatchesLibrary(t *testing.T) {
	out, err := runHelm(t, "template", releaseName, chartDir, "--namespace", releaseNamespace, "--kube-version", kubeVersion)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	fromBinary := rendering{Objects: splitObjects(t, out)}
	fromLibrary := render(t, nil)

	var withoutHooks []string
	for _, name := range fromBinary.names() {
		if name != "Job/"+teardownName {
			withoutHooks = append(withoutHooks, name)
		}
	}
	if got, want := withoutHooks, fromLibrary.names(); !slices.Equal(got, want) {
		t.Errorf("helm template objects besides the teardown Job:\n got %v\nwant %v", got, want)
	}
	for _, o := range fromLibrary.Objects {
		var fromHelm, fromLib map[string]any
		decode(t, fromBinary.find(t, o.Kind, o.Name), &fromHelm)
		decode(t, o, &fromLib)
		if !reflect.DeepEqual(fromHelm, fromLib) {
			t.Errorf("helm template renders %s %s differently from the library", o.Kind, o.Name)
		}
	}
}
