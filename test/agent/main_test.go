package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"reaper.dev/reaper/installer/agent"
)

// cluster is the envtest API server that every test shares, and kube a client of it.
var (
	cluster *rest.Config
	kube    client.Client
)

// TestMain starts kube-apiserver and etcd from KUBEBUILDER_ASSETS with Reaper's CRD, runs
// the tests and stops them.
func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set; run make agent-test, or export KUBEBUILDER_ASSETS=$(hack/envtest-bins.sh)")
		return 1
	}
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(os.Stderr)))

	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	config, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "start envtest from KUBEBUILDER_ASSETS=%s: %v\n", os.Getenv("KUBEBUILDER_ASSETS"), err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop envtest: %v\n", err)
		}
	}()

	scheme, err := agent.NewScheme()
	if err == nil {
		err = admissionregistrationv1.AddToScheme(scheme)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cluster = config
	if kube, err = client.New(config, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintf(os.Stderr, "create the test's client: %v\n", err)
		return 1
	}
	return m.Run()
}
