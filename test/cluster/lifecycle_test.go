package cluster

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// suite carries what the steps of TestReaper hand on to later steps.
type suite struct {
	cluster *cluster

	// configBefore is containerd's root config and dropInsBefore its drop-in folder's listing
	// before helm install. helm uninstall must restore both.
	configBefore  []byte
	dropInsBefore []string

	// sleeperPID is the node's PID of the reaper pod "sleeper", which the pod step starts and
	// which runs through the upgrade and the uninstall. Empty when that step failed.
	sleeperPID string
}

const (
	// sleeperPod runs from the pod step to the uninstall step.
	sleeperPod = "sleeper"
	// sleeperMarker is part of the sleeper's command line, to tell its process from a reused PID.
	sleeperMarker = "sleeper started"
)

// Paths of the node's containerd and of Reaper's install, which the values of hack/e2e-cluster.sh
// put in CLUSTER_DIR/c.
func (c *cluster) containerdConfig() string { return filepath.Join(c.dir, "c", "config.toml") }
func (c *cluster) dropInDir() string        { return filepath.Join(c.dir, "c", "conf.d") }
func (c *cluster) installDir() string       { return filepath.Join(c.dir, "c", "reaper-bin") }
func (c *cluster) shimLink() string {
	return filepath.Join(c.dir, "c", "path", "containerd-shim-reaper-v2")
}

var installedBinaries = []string{"containerd-shim-reaper-v2", "reaper-runtime", "reaper-init"}

func (s *suite) testInstall(t *testing.T) {
	c := s.cluster
	s.configBefore = readFile(t, c.containerdConfig())
	s.dropInsBefore = listDir(t, c.dropInDir())

	// The agent pods use hostPID and hostPath volumes, which need the privileged Pod Security
	// level in the release namespace.
	c.mustKubectl(t, "create", "namespace", releaseNamespace)
	c.mustKubectl(t, "label", "namespace", releaseNamespace, "pod-security.kubernetes.io/enforce=privileged")
	c.helm(t, "install", "reaper", c.chart, "--namespace", releaseNamespace, "--values", c.values, "--wait", "--timeout", "3m")

	c.waitReaperNodeReady(t, c.version)
	c.waitNodeLabel(t, "true")
	c.mustKubectl(t, "get", "runtimeclass", "reaper", "reaper-protected")
	for _, name := range installedBinaries {
		if _, err := os.Stat(filepath.Join(c.installDir(), name)); err != nil {
			t.Errorf("the agent did not install %s: %v", name, err)
		}
	}
	out := c.mustKubectl(t, "get", "reapernodes")
	t.Logf("kubectl get reapernodes:\n%s", out)

	c.mustKubectl(t, "create", "namespace", workloadNamespace)
	c.mustKubectl(t, "label", "namespace", workloadNamespace, optInLabel+"=true")
	// The ServiceAccount admission plugin rejects pods until the namespace's default
	// ServiceAccount exists.
	eventually(t, waitTimeout, "default ServiceAccount of "+workloadNamespace, func() error {
		_, err := c.kubectl("-n", workloadNamespace, "get", "serviceaccount", "default")
		return err
	})
}

// waitReaperNodeReady waits until the node's ReaperNode is Ready with version installed, and
// fails with the ReaperNode and the agent's log otherwise.
func (c *cluster) waitReaperNodeReady(t *testing.T, version string) {
	t.Helper()
	defer func() {
		if t.Failed() {
			c.logDiagnostics(t)
		}
	}()
	eventually(t, waitTimeout, "ReaperNode "+nodeName+" Ready with version "+version, func() error {
		phase := c.jsonpath("", "reapernode/"+nodeName, "{.status.phase}")
		installed := c.jsonpath("", "reapernode/"+nodeName, "{.status.installedVersion}")
		if phase != "Ready" || installed != version {
			return fmt.Errorf("phase %q, installedVersion %q", phase, installed)
		}
		return nil
	})
}

// waitNodeLabel waits until the Node's ready label has value, or is gone for "".
func (c *cluster) waitNodeLabel(t *testing.T, value string) {
	t.Helper()
	eventually(t, waitTimeout, fmt.Sprintf("label %s=%q on node %s", readyLabel, value, nodeName), func() error {
		got := c.jsonpath("", "node/"+nodeName, `{.metadata.labels.reaper\.dev/ready}`)
		if got != value {
			return fmt.Errorf("the label is %q", got)
		}
		return nil
	})
}

// logDiagnostics logs the ReaperNode, the release's pods and the agent's and controller's logs.
func (c *cluster) logDiagnostics(t *testing.T) {
	t.Helper()
	for _, args := range [][]string{
		{"get", "reapernodes", "-o", "yaml"},
		{"-n", releaseNamespace, "get", "pods", "-o", "wide"},
		{"-n", releaseNamespace, "logs", "daemonset/reaper-agent", "--tail", "40"},
		{"-n", releaseNamespace, "logs", "deployment/reaper-controller", "--tail", "40"},
	} {
		out, err := c.kubectl(args...)
		if err != nil {
			t.Logf("kubectl %s: %v", strings.Join(args, " "), err)
			continue
		}
		t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
	}
}

func (s *suite) testUpgrade(t *testing.T) {
	c := s.cluster
	if s.sleeperPID == "" {
		t.Fatal("the pod step did not leave its reaper pod running, so there is nothing to keep running")
	}
	shimBefore := digest(t, filepath.Join(c.installDir(), "containerd-shim-reaper-v2"))
	containerID := c.jsonpath(workloadNamespace, "pod/"+sleeperPod, "{.status.containerStatuses[0].containerID}")

	c.helm(t, "upgrade", "reaper", c.chart, "--namespace", releaseNamespace, "--values", c.values,
		"--set", "image.tag="+c.nextVersion, "--wait", "--timeout", "3m")
	c.waitReaperNodeReady(t, c.nextVersion)
	c.waitNodeLabel(t, "true")

	if shimAfter := digest(t, filepath.Join(c.installDir(), "containerd-shim-reaper-v2")); shimAfter == shimBefore {
		t.Errorf("the node's containerd-shim-reaper-v2 is the same file after the upgrade to %s (sha256 %s)", c.nextVersion, shimAfter)
	}
	s.checkSleeperRunning(t, containerID)

	// A pod started after the upgrade runs on the new shim.
	c.apply(t, c.reaperPod("after-upgrade", corev1.RestartPolicyNever, "echo upgraded"))
	c.waitPodPhase(t, workloadNamespace, "after-upgrade", "Succeeded")
	if out := c.mustKubectl(t, "-n", workloadNamespace, "logs", "after-upgrade"); !strings.Contains(out, "upgraded") {
		t.Errorf("kubectl logs after-upgrade printed %q, expected \"upgraded\"", out)
	}
	c.mustKubectl(t, "-n", workloadNamespace, "delete", "pod", "after-upgrade", "--timeout", waitTimeout.String())
}

// checkSleeperRunning fails unless the sleeper pod still runs the same container, without a
// restart, in the same node process, and that kubectl exec into it works.
func (s *suite) checkSleeperRunning(t *testing.T, containerID string) {
	t.Helper()
	c := s.cluster
	if got := c.jsonpath(workloadNamespace, "pod/"+sleeperPod, "{.status.containerStatuses[0].containerID}"); got != containerID {
		t.Errorf("pod %s runs container %q, not %q as before", sleeperPod, got, containerID)
	}
	if got := c.jsonpath(workloadNamespace, "pod/"+sleeperPod, "{.status.containerStatuses[0].restartCount}"); got != "0" {
		t.Errorf("pod %s has restartCount %q, expected 0", sleeperPod, got)
	}
	if !processAlive(s.sleeperPID, sleeperMarker) {
		t.Errorf("the process of pod %s (PID %s) no longer runs on the node", sleeperPod, s.sleeperPID)
	}
	out, err := c.kubectl("-n", workloadNamespace, "exec", sleeperPod, "--", "/bin/echo", "still-here")
	if err != nil || !strings.Contains(out, "still-here") {
		t.Errorf("kubectl exec into pod %s: %q, %v", sleeperPod, out, err)
	}
}

func (s *suite) testUninstall(t *testing.T) {
	c := s.cluster
	if s.sleeperPID != "" {
		s.checkInstallerRejectsUninstall(t)
	}
	uninstall := c.startHelm(t, "uninstall", "reaper", "--namespace", releaseNamespace, "--wait", "--timeout", "5m")

	if s.sleeperPID != "" {
		s.checkUninstallWaitsForPods(t)
	}
	if err := uninstall.wait(); err != nil {
		c.logDiagnostics(t)
		t.Fatalf("helm uninstall failed: %v", err)
	}

	if after := readFile(t, c.containerdConfig()); !bytes.Equal(after, s.configBefore) {
		t.Errorf("%s differs from its content before helm install:\nbefore:\n%s\nafter:\n%s", c.containerdConfig(), s.configBefore, after)
	}
	if after := listDir(t, c.dropInDir()); !slices.Equal(after, s.dropInsBefore) {
		t.Errorf("%s lists %v, before helm install it listed %v", c.dropInDir(), after, s.dropInsBefore)
	}
	for _, name := range installedBinaries {
		if _, err := os.Stat(filepath.Join(c.installDir(), name)); !os.IsNotExist(err) {
			t.Errorf("%s is still on the node after helm uninstall (stat: %v)", filepath.Join(c.installDir(), name), err)
		}
	}
	if _, err := os.Lstat(c.shimLink()); !os.IsNotExist(err) {
		t.Errorf("the link %s is still on the node after helm uninstall (lstat: %v)", c.shimLink(), err)
	}
	c.waitNodeLabel(t, "")
	for _, class := range []string{"reaper", "reaper-protected"} {
		if out, err := c.kubectl("get", "runtimeclass", class); err == nil {
			t.Errorf("RuntimeClass %s still exists after helm uninstall: %s", class, out)
		}
	}
	if out := c.mustKubectl(t, "get", "reapernodes", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("ReaperNodes left after helm uninstall: %s", out)
	}
	eventually(t, waitTimeout, "no pod left in "+releaseNamespace, func() error {
		out, err := c.kubectl("-n", releaseNamespace, "get", "pods", "-o", "name")
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) != "" {
			return fmt.Errorf("pods left: %s", strings.Join(strings.Fields(out), " "))
		}
		return nil
	})

	out, err := c.applyErr(c.reaperPod("after-uninstall", corev1.RestartPolicyNever, "echo should not run"))
	if err == nil {
		t.Errorf("a reaper pod was admitted after helm uninstall: %s", out)
	} else if !strings.Contains(err.Error(), `RuntimeClass "reaper" not found`) {
		t.Errorf("a reaper pod after helm uninstall was rejected for another reason than the missing RuntimeClass: %v", err)
	}
}

// checkInstallerRejectsUninstall runs reaper-installer uninstall on the node while the sleeper
// pod runs, as an administrator might on a node that Helm manages. It checks that the command
// fails, names the pod and leaves containerd's config alone.
func (s *suite) checkInstallerRejectsUninstall(t *testing.T) {
	c := s.cluster
	containerdDir := filepath.Join(c.dir, "c")
	out, err := run("", filepath.Join(c.repoRoot, "bin", "reaper-installer"), "uninstall",
		"--containerd-config", c.containerdConfig(), "--containerd-socket", filepath.Join(containerdDir, "containerd.sock"),
		"--install-dir", c.installDir(), "--link-dir", filepath.Join(containerdDir, "path"),
		"--lock-file", filepath.Join(containerdDir, "installer.lock"), "--restart", "none")
	if err == nil {
		t.Fatalf("reaper-installer uninstall reverted the node while pod %s ran: %s", sleeperPod, out)
	}
	t.Logf("reaper-installer uninstall rejected the revert: %s", strings.TrimSpace(out))
	if !strings.Contains(out, workloadNamespace+"/"+sleeperPod) || !strings.Contains(out, "--force") {
		t.Errorf("reaper-installer uninstall failed without naming the pod %s/%s and --force: %s", workloadNamespace, sleeperPod, out)
	}
	if drift := listDir(t, c.dropInDir()); slices.Equal(drift, s.dropInsBefore) {
		t.Errorf("reaper-installer uninstall removed Reaper's drop-in although it failed: %s lists %v", c.dropInDir(), drift)
	}
}

// checkUninstallWaitsForPods checks what docs/operator.md promises for a reaper pod that runs
// during helm uninstall. The agent leaves the node installed and names the pod in the
// ReaperNode's conditions, and the pod keeps running with a working exec. Once the pod is
// deleted, the uninstall goes on.
func (s *suite) checkUninstallWaitsForPods(t *testing.T) {
	c := s.cluster
	containerID := c.jsonpath(workloadNamespace, "pod/"+sleeperPod, "{.status.containerStatuses[0].containerID}")
	want := workloadNamespace + "/" + sleeperPod
	eventually(t, waitTimeout, "ReaperNode condition naming the running pod "+want, func() error {
		reason := c.jsonpath("", "reapernode/"+nodeName, `{.status.conditions[?(@.type=="BinariesInstalled")].reason}`)
		message := c.jsonpath("", "reapernode/"+nodeName, `{.status.conditions[?(@.type=="BinariesInstalled")].message}`)
		if reason != "PodsRunning" || !strings.Contains(message, want) {
			return fmt.Errorf("condition BinariesInstalled has reason %q and message %q", reason, message)
		}
		return nil
	})

	if drift := listDir(t, c.dropInDir()); slices.Equal(drift, s.dropInsBefore) {
		t.Errorf("the node was reverted while pod %s still ran: %s lists %v as before the install", want, c.dropInDir(), drift)
	}
	s.checkSleeperRunning(t, containerID)

	c.mustKubectl(t, "-n", workloadNamespace, "delete", "pod", sleeperPod, "--timeout", waitTimeout.String())
	if processAlive(s.sleeperPID, sleeperMarker) {
		t.Errorf("the process of pod %s (PID %s) still runs after kubectl delete", sleeperPod, s.sleeperPID)
	}
}

// listDir returns the names in dir, or nil when dir does not exist.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, entry := range entries {
		names = append(names, entry.Name())
	}
	return names
}

func digest(t *testing.T, path string) string {
	t.Helper()
	sum := sha256.Sum256(readFile(t, path))
	return hex.EncodeToString(sum[:])
}
