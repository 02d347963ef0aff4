package chart

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestHelmInstallUpgradeUninstall installs the chart with the helm binary into envtest's
// kube-apiserver, upgrades it to a new chart version and uninstalls it. envtest runs no Job
// controller, so the uninstall skips the teardown hook, whose command
// TestControllerRunsWithInstalledRBAC runs.
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	ctx := context.Background()
	c, cfg, _ := startAPIServer(t)
	createNamespace(ctx, t, c)
	kubeconfig := adminKubeconfig(t, cfg)
	helm := func(args ...string) {
		t.Helper()
		args = append(args, "--kubeconfig", kubeconfig, "--namespace", releaseNamespace)
		if out, err := runHelm(t, args...); err != nil {
			t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	helm("install", releaseName, chartDir)
	var d appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: controllerName}, &d); err != nil {
		t.Fatalf("after helm install: %v", err)
	}

	// An upgrade changes the version labels; it fails if a selector uses them, because a
	// Deployment's selector is immutable.
	helm("upgrade", releaseName, newChartVersion(t, "0.2.0"), "--set", "agent.restartMethod=none")
	if err := c.Get(ctx, client.ObjectKeyFromObject(&d), &d); err != nil {
		t.Fatal(err)
	}
	if got := d.Labels["app.kubernetes.io/version"]; got != "0.2.0" {
		t.Errorf("after helm upgrade the Deployment has version label %q, want 0.2.0", got)
	}

	helm("uninstall", releaseName, "--no-hooks", "--wait")
	if err := c.Get(ctx, client.ObjectKeyFromObject(&d), &d); !apierrors.IsNotFound(err) {
		t.Errorf("after helm uninstall, get the Deployment: %v, want not found", err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := c.Get(ctx, client.ObjectKey{Name: crdName}, &crd); err != nil {
		t.Errorf("the CRD with helm.sh/resource-policy: keep is gone after helm uninstall: %v", err)
	}
}

// adminKubeconfig writes a kubeconfig for envtest's admin user.
func adminKubeconfig(t *testing.T, admin *rest.Config) string {
	t.Helper()
	config := clientcmdapi.NewConfig()
	config.Clusters["envtest"] = &clientcmdapi.Cluster{Server: admin.Host, CertificateAuthorityData: admin.CAData}
	config.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: admin.CertData, ClientKeyData: admin.KeyData, Token: admin.BearerToken}
	config.Contexts["admin"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	config.CurrentContext = "admin"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// newChartVersion copies the chart to a temporary folder with version and appVersion set to
// version, and returns the folder.
func newChartVersion(t *testing.T, version string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "reaper")
	if err := os.CopyFS(dir, os.DirFS(chartDir)); err != nil {
		t.Fatalf("copy the chart: %v", err)
	}
	chartFile := filepath.Join(dir, "Chart.yaml")
	data, err := os.ReadFile(chartFile)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "version: 0.1.0", "version: "+version, 1)
	text = strings.Replace(text, `appVersion: "0.1.0"`, `appVersion: "`+version+`"`, 1)
	if text == string(data) {
		t.Fatal("Chart.yaml has no version: 0.1.0 line to change")
	}
	if err := os.WriteFile(chartFile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
