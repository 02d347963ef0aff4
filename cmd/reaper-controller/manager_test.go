package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"reaper.dev/reaper/controllers"
)

// TestControllerServesHealthAndMetrics runs the controller command against envtest's API
// server, and stops it with SIGTERM, as the kubelet does.
func TestControllerServesHealthAndMetrics(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: this test needs a real etcd and kube-apiserver. " +
			"Run `make unit`, or `export KUBEBUILDER_ASSETS=$(hack/envtest-bins.sh)` first.")
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join("..", "..", "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
	restConfig, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	defer func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	}()
	scheme, err := controllers.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(restConfig, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "reaper-system"}}); err != nil {
		t.Fatal(err)
	}

	metricsAddr, healthAddr := freeAddress(t), freeAddress(t)
	done := make(chan error, 1)
	go func() {
		_, err := runCommand(t, "--kubeconfig", writeKubeconfig(t, restConfig), "--namespace", "reaper-system",
			"--image", "registry.test/reaper:v1", "--metrics-bind-address", metricsAddr, "--health-probe-bind-address", healthAddr)
		done <- err
	}()

	for _, path := range []string{"/healthz", "/readyz"} {
		waitForBody(t, "http://"+healthAddr+path, "ok")
	}
	waitForBody(t, "http://"+metricsAddr+"/metrics", "controller_runtime_reconcile_total")
	lease := &coordinationv1.Lease{}
	waitFor(t, "leader election Lease", func() error {
		return c.Get(context.Background(), client.ObjectKey{Namespace: "reaper-system", Name: controllers.LeaderElectionID}, lease)
	})

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("controller after SIGTERM: %v, want a clean stop", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the controller did not stop within 30s of SIGTERM")
	}
}

func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func writeKubeconfig(t *testing.T, config *rest.Config) string {
	t.Helper()
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters["envtest"] = &clientcmdapi.Cluster{Server: config.Host, CertificateAuthorityData: config.CAData}
	kubeconfig.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: config.CertData, ClientKeyData: config.KeyData}
	kubeconfig.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kubeconfig.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kubeconfig, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func waitForBody(t *testing.T, url, want string) {
	t.Helper()
	waitFor(t, url, func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			return fmt.Errorf("status %d, body without %q", resp.StatusCode, want)
		}
		return nil
	})
}

func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
