package agent

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
	"reaper.dev/reaper/installer"
)

// installTimeout bounds an install with a restart of the test's containerd.
const installTimeout = 60 * time.Second

// installReady creates the ReaperNode, runs the agent and waits until the node is Ready.
func installReady(t *testing.T, name string, h *host) (*reaperv1alpha1.ReaperNode, func()) {
	t.Helper()
	createNode(t, name, reaperv1alpha1.ReaperNodeSpec{})
	stop := runAgent(t, h.options(name))
	return waitForPhase(t, name, reaperv1alpha1.PhaseReady, installTimeout), stop
}

// TestInstallReportsReady installs on a node with a real containerd and checks the
// finalizer, the files, what containerd serves and every field the agent reports.
func TestInstallReportsReady(t *testing.T) {
	h := newHost(t, privateConfig)
	startContainerd(t, h)
	node, _ := installReady(t, "install-ready", h)

	if !controllerutil.ContainsFinalizer(node, reaperv1alpha1.AgentFinalizer) {
		t.Errorf("finalizers are %q, want %s", node.Finalizers, reaperv1alpha1.AgentFinalizer)
	}
	for _, name := range installer.Binaries {
		if !h.installed(name) {
			t.Errorf("%s is not installed in %s", name, h.installDir())
		}
	}
	if !strings.Contains(readFile(t, h.dropIn()), "runtimes.reaper]") {
		t.Errorf("the drop-in does not register reaper:\n%s", readFile(t, h.dropIn()))
	}
	for _, handler := range []string{"reaper", "reaper-protected"} {
		if served := h.served(t); !slices.Contains(served, handler) {
			t.Errorf("containerd does not serve %s (it serves %q)", handler, served)
		}
	}

	for _, conditionType := range []string{reaperv1alpha1.ConditionBinariesInstalled, reaperv1alpha1.ConditionContainerdConfigured, reaperv1alpha1.ConditionHandlerRegistered} {
		c := condition(t, node, conditionType)
		if c.Status != metav1.ConditionTrue || c.Reason != reaperv1alpha1.ReasonSucceeded {
			t.Errorf("condition %s is %s with reason %s, want True and Succeeded: %s", c.Type, c.Status, c.Reason, c.Message)
		}
		if c.ObservedGeneration != node.Generation {
			t.Errorf("condition %s has observedGeneration %d, want %d", c.Type, c.ObservedGeneration, node.Generation)
		}
	}
	if msg := condition(t, node, reaperv1alpha1.ConditionContainerdConfigured).Message; !strings.Contains(msg, h.dropIn()) {
		t.Errorf("the ContainerdConfigured message does not name the drop-in %s: %s", h.dropIn(), msg)
	}

	s := node.Status
	if s.ObservedGeneration != node.Generation {
		t.Errorf("observedGeneration is %d, want %d", s.ObservedGeneration, node.Generation)
	}
	if s.InstalledVersion != testVersion {
		t.Errorf("installedVersion is %q, want %q", s.InstalledVersion, testVersion)
	}
	if !strings.HasPrefix(s.Containerd.Version, "v2.") {
		t.Errorf("containerd.version is %q, want the v2 version of the test's containerd", s.Containerd.Version)
	}
	if s.Containerd.ConfigPath != h.config {
		t.Errorf("containerd.configPath is %q, want %q", s.Containerd.ConfigPath, h.config)
	}
	if s.Containerd.ConfigVersion != 3 {
		t.Errorf("containerd.configVersion is %d, want 3", s.Containerd.ConfigVersion)
	}
	if s.Containerd.DropInPath != h.dropIn() {
		t.Errorf("containerd.dropInPath is %q, want %q", s.Containerd.DropInPath, h.dropIn())
	}
	if s.Containerd.Flavor != reaperv1alpha1.FlavorPlain {
		t.Errorf("containerd.flavor is %q, want %q", s.Containerd.Flavor, reaperv1alpha1.FlavorPlain)
	}
	if s.Containerd.CgroupDriver != reaperv1alpha1.CgroupDriverCgroupfs && s.Containerd.CgroupDriver != reaperv1alpha1.CgroupDriverSystemd {
		t.Errorf("containerd.cgroupDriver is %q, want systemd or cgroupfs", s.Containerd.CgroupDriver)
	}
	waitForEvent(t, node.Name, "Installed")

	// In steady state the agent writes nothing: resyncs leave the resourceVersion alone.
	version := getNode(t, node.Name).ResourceVersion
	time.Sleep(5 * time.Second)
	if now := getNode(t, node.Name).ResourceVersion; now != version {
		t.Errorf("the ReaperNode changed from resourceVersion %s to %s in steady state: %s", version, now, describe(getNode(t, node.Name)))
	}
}

// TestFinalizerBeforeHostChange denies the finalizer with a ValidatingAdmissionPolicy
// that the real API server evaluates, and checks that the agent then changes nothing on
// the host.
func TestFinalizerBeforeHostChange(t *testing.T) {
	const name = "finalizer-denied"
	h := newHost(t, privateConfig)
	denyFinalizer(t, name)
	createNode(t, name, reaperv1alpha1.ReaperNodeSpec{})
	runAgent(t, h.options(name))

	// The agent retries with backoff; give it several attempts.
	time.Sleep(5 * time.Second)
	node := getNode(t, name)
	if len(node.Finalizers) > 0 {
		t.Errorf("the ReaperNode has finalizers %q although the policy denies them", node.Finalizers)
	}
	if node.Status.Phase != "" {
		t.Errorf("the agent reported phase %s without its finalizer: %s", node.Status.Phase, describe(node))
	}
	if h.exists(h.installDir()) {
		t.Errorf("the agent created %s without its finalizer", h.installDir())
	}
	if h.exists(h.dropIn()) {
		t.Errorf("the agent wrote %s without its finalizer", h.dropIn())
	}
	if got := h.read(t); got != h.original {
		t.Errorf("the agent changed containerd's config without its finalizer:\n%s", got)
	}
}

// TestDriftRepaired removes the import that the install added to the root config, as a
// config manager would, and a binary, and checks that the agent repairs both on its
// resync and reports it.
func TestDriftRepaired(t *testing.T) {
	const name = "drift-repaired"
	h := newHost(t, configWithoutImports)
	startContainerd(t, h)
	installReady(t, name, h)
	if got := h.read(t); got == h.original || !strings.Contains(got, "imports") {
		t.Fatalf("the install did not add an imports line to the root config:\n%s", got)
	}

	if err := os.WriteFile(h.config, []byte(h.original), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(h.binary(installer.RuntimeBinary)); err != nil {
		t.Fatal(err)
	}

	waitForEvent(t, name, reaperv1alpha1.ReasonDrifted)
	waitForEvent(t, name, "Repaired")
	node := waitForPhase(t, name, reaperv1alpha1.PhaseReady, installTimeout)
	if got := h.read(t); !strings.Contains(got, "imports") {
		t.Errorf("the repair did not add the imports line again:\n%s", got)
	}
	if !h.installed(installer.RuntimeBinary) {
		t.Errorf("the repair did not install %s again", h.binary(installer.RuntimeBinary))
	}
	if served := h.served(t); !slices.Contains(served, "reaper") {
		t.Errorf("containerd does not serve reaper after the repair (it serves %q)", served)
	}
	if msg := condition(t, node, reaperv1alpha1.ConditionContainerdConfigured).Message; !strings.Contains(msg, "repaired") || !strings.Contains(msg, h.config) {
		t.Errorf("the ContainerdConfigured message does not report the repaired config %s: %s", h.config, msg)
	}
	if msg := condition(t, node, reaperv1alpha1.ConditionBinariesInstalled).Message; !strings.Contains(msg, "repaired") || !strings.Contains(msg, installer.RuntimeBinary) {
		t.Errorf("the BinariesInstalled message does not report the repaired %s: %s", installer.RuntimeBinary, msg)
	}
}

// TestDeleteRevertsNode deletes the ReaperNode and checks that the agent waits for the
// controller's Ready=False, then leaves the config byte-identical to before the install,
// removes the binaries and its finalizer.
func TestDeleteRevertsNode(t *testing.T) {
	const name = "delete-reverts"
	h := newHost(t, configWithoutImports)
	startContainerd(t, h)
	installReady(t, name, h)

	deleteNode(t, name)
	waitForPhase(t, name, reaperv1alpha1.PhaseUninstalling, 20*time.Second)
	time.Sleep(2 * time.Second)
	if !h.installed(installer.ShimBinary) || !strings.Contains(h.read(t), "imports") {
		t.Fatal("the agent reverted the node before the controller set Ready to False")
	}

	setControllerReadyFalse(t, name)
	waitUntilGone(t, name, installTimeout)
	if got := h.read(t); got != h.original {
		t.Errorf("containerd's config after the uninstall is\n%s\nwant the original\n%s", got, h.original)
	}
	for _, name := range installer.Binaries {
		if h.installed(name) {
			t.Errorf("%s is still installed", h.binary(name))
		}
	}
	if h.exists(h.dropIn()) {
		t.Errorf("the drop-in %s is still there", h.dropIn())
	}
	if served := h.served(t); slices.Contains(served, "reaper") {
		t.Errorf("containerd still serves reaper after the uninstall (it serves %q)", served)
	}
	waitForEvent(t, name, "Uninstalled")
}

// TestSigtermKeepsInstall stops the agent as a SIGTERM does and checks that the node
// keeps Reaper and the ReaperNode keeps its finalizer. A new agent then reverts the node
// on deletion.
func TestSigtermKeepsInstall(t *testing.T) {
	const name = "sigterm-keeps"
	h := newHost(t, privateConfig)
	startContainerd(t, h)
	_, stop := installReady(t, name, h)
	config := h.read(t)
	dropIn := readFile(t, h.dropIn())

	stop()
	deleteNode(t, name)
	time.Sleep(3 * time.Second)

	node := getNode(t, name)
	if node == nil {
		t.Fatal("the ReaperNode is gone although no agent reverted the node")
	}
	if node.Status.Phase != reaperv1alpha1.PhaseReady {
		t.Errorf("phase is %s after the agent stopped, want Ready: %s", node.Status.Phase, describe(node))
	}
	if h.read(t) != config || readFile(t, h.dropIn()) != dropIn {
		t.Error("containerd's config changed after the agent stopped")
	}
	for _, name := range installer.Binaries {
		if !h.installed(name) {
			t.Errorf("%s is gone after the agent stopped", h.binary(name))
		}
	}
	if served := h.served(t); !slices.Contains(served, "reaper") {
		t.Errorf("containerd no longer serves reaper after the agent stopped (it serves %q)", served)
	}

	runAgent(t, h.options(name))
	waitForPhase(t, name, reaperv1alpha1.PhaseUninstalling, 20*time.Second)
	setControllerReadyFalse(t, name)
	waitUntilGone(t, name, installTimeout)
	if got := h.read(t); got != h.original {
		t.Errorf("containerd's config after the uninstall is\n%s\nwant the original\n%s", got, h.original)
	}
}

// TestPausedChangesNothing creates a paused ReaperNode and checks that the agent reports
// Paused and changes nothing, then installs once spec.paused is false.
func TestPausedChangesNothing(t *testing.T) {
	const name = "paused"
	h := newHost(t, privateConfig)
	startContainerd(t, h)
	createNode(t, name, reaperv1alpha1.ReaperNodeSpec{Paused: true})
	runAgent(t, h.options(name))

	var node *reaperv1alpha1.ReaperNode
	waitFor(t, 20*time.Second, "the agent reports Paused", func() (bool, string) {
		node = getNode(t, name)
		return len(node.Status.Conditions) == 3, describe(node)
	})
	for _, c := range node.Status.Conditions {
		if c.Reason != reaperv1alpha1.ReasonPaused || !strings.Contains(c.Message, "spec.paused") {
			t.Errorf("condition %s has reason %s, want Paused with a message about spec.paused: %s", c.Type, c.Reason, c.Message)
		}
	}
	if len(node.Finalizers) > 0 {
		t.Errorf("the agent added finalizers %q to a paused ReaperNode", node.Finalizers)
	}
	if h.exists(h.installDir()) || h.exists(h.dropIn()) || h.read(t) != h.original {
		t.Error("the agent changed the host of a paused ReaperNode")
	}

	setPaused(t, node, false)
	node = waitForPhase(t, name, reaperv1alpha1.PhaseReady, installTimeout)

	// Paused again, the agent reports drift and leaves it alone.
	setPaused(t, node, true)
	if err := os.Remove(h.dropIn()); err != nil {
		t.Fatal(err)
	}
	node = waitForPhase(t, name, reaperv1alpha1.PhaseDegraded, 20*time.Second)
	configured := condition(t, node, reaperv1alpha1.ConditionContainerdConfigured)
	if configured.Status != metav1.ConditionFalse || configured.Reason != reaperv1alpha1.ReasonPaused || !strings.Contains(configured.Message, h.dropIn()) {
		t.Errorf("ContainerdConfigured is %s with reason %s, want False, Paused and the missing drop-in: %s", configured.Status, configured.Reason, configured.Message)
	}
	time.Sleep(3 * time.Second)
	if h.exists(h.dropIn()) {
		t.Error("the agent repaired the drop-in of a paused ReaperNode")
	}
}

// setPaused sets the ReaperNode's spec.paused.
func setPaused(t *testing.T, node *reaperv1alpha1.ReaperNode, paused bool) {
	t.Helper()
	patch := client.RawPatch("application/merge-patch+json", fmt.Appendf(nil, `{"spec":{"paused":%t}}`, paused))
	if err := kube.Patch(context.Background(), node, patch); err != nil {
		t.Fatalf("set spec.paused to %t: %v", paused, err)
	}
}

// TestSpecOverridesFlags sets spec.restartMethod none and spec.runtimeHandler, and checks
// that the agent registers that handler without restarting containerd and reports the
// pending restart.
func TestSpecOverridesFlags(t *testing.T) {
	const name = "spec-override"
	h := newHost(t, privateConfig)
	startContainerd(t, h)
	pid := h.pid(t)
	createNode(t, name, reaperv1alpha1.ReaperNodeSpec{RestartMethod: reaperv1alpha1.RestartNone, RuntimeHandler: "reaper-custom"})
	runAgent(t, h.options(name))

	node := waitForPhase(t, name, reaperv1alpha1.PhaseDegraded, installTimeout)
	if now := h.pid(t); now != pid {
		t.Errorf("containerd restarted (pid %s, then %s) although spec.restartMethod is none", pid, now)
	}
	if dropIn := readFile(t, h.dropIn()); !strings.Contains(dropIn, "runtimes.reaper-custom]") {
		t.Errorf("the drop-in does not register the spec's handler reaper-custom:\n%s", dropIn)
	}
	configured := condition(t, node, reaperv1alpha1.ConditionContainerdConfigured)
	if configured.Status != metav1.ConditionFalse || configured.Reason != reaperv1alpha1.ReasonRestartRequired {
		t.Errorf("ContainerdConfigured is %s with reason %s, want False and RestartRequired: %s", configured.Status, configured.Reason, configured.Message)
	}
	registered := condition(t, node, reaperv1alpha1.ConditionHandlerRegistered)
	if registered.Status != metav1.ConditionFalse || registered.Reason != reaperv1alpha1.ReasonHandlerMissing || !strings.Contains(registered.Message, "reaper-custom") {
		t.Errorf("HandlerRegistered is %s with reason %s, want False, HandlerMissing and the handler's name: %s", registered.Status, registered.Reason, registered.Message)
	}
	if binaries := condition(t, node, reaperv1alpha1.ConditionBinariesInstalled); binaries.Status != metav1.ConditionTrue {
		t.Errorf("BinariesInstalled is %s, want True: %s", binaries.Status, binaries.Message)
	}
}

// TestBadConfigFails runs the agent on configs it cannot edit and checks that it reports
// Failed with the reason and the detail, changes nothing, and retries once the config is
// fixed.
func TestBadConfigFails(t *testing.T) {
	cases := []struct {
		name    string
		config  string
		reason  string
		message string
	}{
		{"bad-toml", "version = 3\n[plugins\n", reaperv1alpha1.ReasonInvalidConfig, "line 2"},
		{"unknown-version", "version = 9\n", reaperv1alpha1.ReasonUnsupportedConfigVersion, "version 9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t, c.config)
			opts := h.options(c.name)
			opts.Host.RestartMethod = string(installer.RestartNone)
			createNode(t, c.name, reaperv1alpha1.ReaperNodeSpec{})
			runAgent(t, opts)

			node := waitForPhase(t, c.name, reaperv1alpha1.PhaseFailed, 20*time.Second)
			configured := condition(t, node, reaperv1alpha1.ConditionContainerdConfigured)
			if configured.Status != metav1.ConditionFalse || configured.Reason != c.reason {
				t.Errorf("ContainerdConfigured is %s with reason %s, want False and %s", configured.Status, configured.Reason, c.reason)
			}
			if !strings.Contains(configured.Message, c.message) || !strings.Contains(configured.Message, h.config) {
				t.Errorf("the message does not name %s and %q: %s", h.config, c.message, configured.Message)
			}
			if h.exists(h.installDir()) || h.read(t) != h.original {
				t.Error("the failed install changed the host")
			}
			waitForEvent(t, c.name, c.reason)

			// Fixed, the config is installed on the next retry. No containerd runs, so
			// the node is Degraded with the CRI unavailable.
			if err := os.WriteFile(h.config, []byte("version = 3\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			node = waitForPhase(t, c.name, reaperv1alpha1.PhaseDegraded, 60*time.Second)
			if registered := condition(t, node, reaperv1alpha1.ConditionHandlerRegistered); registered.Reason != reaperv1alpha1.ReasonCRIUnavailable {
				t.Errorf("HandlerRegistered has reason %s, want CRIUnavailable: %s", registered.Reason, registered.Message)
			}
		})
	}
}

// TestDeleteNeverInstalled fails the install because containerd cannot be restarted,
// then deletes the ReaperNode and checks that the agent lets it go without a restart and
// without changing the host.
func TestDeleteNeverInstalled(t *testing.T) {
	const name = "never-installed"
	h := newHost(t, privateConfig)
	createNode(t, name, reaperv1alpha1.ReaperNodeSpec{})
	runAgent(t, h.options(name))

	node := waitForPhase(t, name, reaperv1alpha1.PhaseFailed, 20*time.Second)
	configured := condition(t, node, reaperv1alpha1.ConditionContainerdConfigured)
	if configured.Reason != reaperv1alpha1.ReasonRestartFailed || !strings.Contains(configured.Message, h.path("containerd.pid")) {
		t.Errorf("ContainerdConfigured has reason %s, want RestartFailed with the missing pid file %s: %s",
			configured.Reason, h.path("containerd.pid"), configured.Message)
	}

	deleteNode(t, name)
	waitForPhase(t, name, reaperv1alpha1.PhaseUninstalling, 20*time.Second)
	setControllerReadyFalse(t, name)
	waitUntilGone(t, name, 20*time.Second)
	if h.exists(h.installDir()) || h.exists(h.dropIn()) || h.read(t) != h.original {
		t.Error("the agent changed the host of a node it never installed")
	}
}
