package agent

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
	"reaper.dev/reaper/installer"
)

// TestAgentCommandSigterm runs `reaper-installer agent` as its own process, checks its
// health endpoints and the install, then sends it SIGTERM and checks that it exits 0 and
// leaves the install in place.
func TestAgentCommandSigterm(t *testing.T) {
	const name = "command-sigterm"
	h := newHost(t, privateConfig)
	startContainerd(t, h)
	createNode(t, name, reaperv1alpha1.ReaperNodeSpec{})

	probe := freeLoopbackAddress(t)
	cmd := exec.Command(buildInstaller(t), "agent", "--node-name="+name, "--kubeconfig="+writeKubeconfig(t),
		"--host-root=/", "--distro=containerd", "--containerd-config="+h.config, "--containerd-socket="+h.socket(),
		"--install-dir="+h.installDir(), "--link-dir=", "--lock-file="+h.path("installer.lock"), "--source-dir="+h.sourceDir,
		"--restart=signal", "--containerd-pid-file="+h.path("containerd.pid"), "--handler=reaper", "--protected-handler=",
		"--resync-period=10s", "--health-probe-bind-address="+probe, "--zap-log-level=info")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			if err := <-exited; err != nil {
				t.Logf("the agent was killed: %v", err)
			}
		}
		t.Logf("the agent's log:\n%s", logs.String())
	})

	waitForPhase(t, name, reaperv1alpha1.PhaseReady, installTimeout)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + probe + path)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s returned %s, want 200 OK", path, resp.Status)
		}
	}
	if strings.Contains(readFile(t, h.dropIn()), "reaper-protected") {
		t.Error("--protected-handler= registered the protected handler anyway")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the agent exited with %v after SIGTERM, want status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not exit within 30s of SIGTERM")
	}

	if node := getNode(t, name); node.Status.Phase != reaperv1alpha1.PhaseReady || len(node.Finalizers) == 0 {
		t.Errorf("after SIGTERM the ReaperNode is not Ready with its finalizer: %s", describe(node))
	}
	for _, binary := range installer.Binaries {
		if !h.installed(binary) {
			t.Errorf("%s is gone after SIGTERM", h.binary(binary))
		}
	}
	if served := h.served(t); !slices.Contains(served, "reaper") {
		t.Errorf("containerd no longer serves reaper after SIGTERM (it serves %q)", served)
	}
}

// buildInstaller builds reaper-installer into a folder of the test.
func buildInstaller(t *testing.T) string {
	t.Helper()
	binary := filepath.Join(t.TempDir(), "reaper-installer")
	build := exec.Command("go", "build", "-o", binary, "reaper.dev/reaper/cmd/reaper-installer")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of reaper-installer failed: %v\n%s", err, out)
	}
	return binary
}

// writeKubeconfig writes a kubeconfig file for the envtest API server.
func writeKubeconfig(t *testing.T) string {
	t.Helper()
	config := clientcmdapi.NewConfig()
	config.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cluster.Host, CertificateAuthorityData: cluster.CAData}
	config.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{ClientCertificateData: cluster.CertData, ClientKeyData: cluster.KeyData, Token: cluster.BearerToken}
	config.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest"}
	config.CurrentContext = "envtest"

	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		t.Fatalf("write kubeconfig: %v", err)
	}
	return path
}

// freeLoopbackAddress returns a loopback address with a port that is free now.
func freeLoopbackAddress(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	return fmt.Sprintf("127.0.0.1:%d", listener.Addr().(*net.TCPAddr).Port)
}
