package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
	"reaper.dev/reaper/installer"
	"reaper.dev/reaper/installer/agent"
	"reaper.dev/reaper/test/internal/privatecontainerd"
)

// testVersion is the version the test agents report as installed.
const testVersion = "v0.0.0-agent-test"

// host is a node's files in a folder of its own: containerd's config, socket, pid file,
// the install folder and the binaries to install.
type host struct {
	dir string
	// config is containerd's root config and original its content before any install.
	config   string
	original string
	// sourceDir holds stand-ins of the binaries; nothing runs them.
	sourceDir string
}

func (h *host) path(name string) string    { return filepath.Join(h.dir, name) }
func (h *host) socket() string             { return h.path("c.sock") }
func (h *host) installDir() string         { return h.path("opt/reaper/bin") }
func (h *host) dropIn() string             { return h.path("conf.d/reaper.toml") }
func (h *host) binary(name string) string  { return filepath.Join(h.installDir(), name) }
func (h *host) installed(name string) bool { return h.exists(h.binary(name)) }

func (h *host) read(t *testing.T) string {
	t.Helper()
	return readFile(t, h.config)
}

func (h *host) exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// pid returns the pid of the host's containerd.
func (h *host) pid(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(readFile(t, h.path("containerd.pid")))
}

// newHost writes the files of a node whose containerd config is config. Each %[1]s in
// config is replaced by the host's folder.
func newHost(t *testing.T, config string) *host {
	t.Helper()
	dir, err := os.MkdirTemp("", "rpag.")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	h := &host{dir: dir, config: filepath.Join(dir, "config.toml"), sourceDir: filepath.Join(dir, "build")}
	h.original = config
	if strings.Contains(config, "%[1]s") {
		h.original = fmt.Sprintf(config, dir)
	}
	if err := os.WriteFile(h.config, []byte(h.original), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(h.sourceDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range installer.Binaries {
		if err := os.WriteFile(filepath.Join(h.sourceDir, name), []byte(name+" "+testVersion), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// privateConfig is a containerd config whose paths all lie in the host's folder,
// importing its conf.d folder.
const privateConfig = privatecontainerd.ConfigTemplate

// configWithoutImports is privateConfig without its imports line, so the install adds one.
var configWithoutImports = strings.Replace(privateConfig, "imports = [\"%[1]s/conf.d/*.toml\"]\n", "", 1)

// startContainerd runs a real containerd on the host's config under the supervisor loop
// until the test ends, and waits until its CRI serves runc.
func startContainerd(t *testing.T, h *host) {
	t.Helper()
	binary := privatecontainerd.BinaryFromEnv(t, "AGENT_CONTAINERD", "hack/agent-test.sh")
	supervisor, err := privatecontainerd.Start(h.dir, binary)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := supervisor.Stop(); err != nil {
			t.Error(err)
		}
	})

	waitFor(t, 30*time.Second, "containerd serves runc", func() (bool, string) {
		served, err := privatecontainerd.Handlers(h.socket())
		return err == nil && slices.Contains(served, "runc"), fmt.Sprintf("served %q, error %v; log:\n%s", served, err, tail(h.path(privatecontainerd.LogFile)))
	})
}

// served returns the runtime handlers the host's containerd serves.
func (h *host) served(t *testing.T) []string {
	t.Helper()
	served, err := privatecontainerd.Handlers(h.socket())
	if err != nil {
		t.Fatalf("CRI Status of the test's containerd: %v", err)
	}
	return served
}

// options returns the agent options of the host: the signal restart of the supervised
// containerd, no shim link outside the host's folder, and a short resync period.
func (h *host) options(nodeName string) agent.Options {
	return agent.Options{
		NodeName: nodeName,
		Host: installer.HostConfig{
			HostRoot:         "/",
			Distro:           "containerd",
			ContainerdConfig: h.config,
			ContainerdSocket: h.socket(),
			InstallDir:       h.installDir(),
			LinkDir:          "",
			CgroupDriver:     installer.CgroupDriverAuto,
			LockFile:         h.path("installer.lock"),
			RestartMethod:    string(installer.RestartSignal),
			PIDFile:          h.path("containerd.pid"),
			LogFile:          h.path("containerd.log"),
			RestartTimeout:   30 * time.Second,
		},
		SourceDir:              h.sourceDir,
		Handler:                installer.DefaultHandler,
		ProtectedHandler:       installer.DefaultProtectedHandler,
		Version:                testVersion,
		ResyncPeriod:           2 * time.Second,
		UninstallWait:          agent.DefaultUninstallWait,
		HealthProbeBindAddress: "0",
		MetricsBindAddress:     "0",
	}
}

// runAgent starts the agent's manager. The returned function cancels its context, as a
// SIGTERM does, and waits until the manager has stopped.
func runAgent(t *testing.T, opts agent.Options) (stop func()) {
	t.Helper()
	mgr, err := agent.NewManager(cluster, opts)
	if err != nil {
		t.Fatalf("create the agent's manager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()

	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the agent's manager returned an error: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("the agent's manager did not stop within 60s of the cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

// createNode creates the ReaperNode of the test.
func createNode(t *testing.T, name string, spec reaperv1alpha1.ReaperNodeSpec) {
	t.Helper()
	node := &reaperv1alpha1.ReaperNode{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	if err := kube.Create(context.Background(), node); err != nil {
		t.Fatalf("create ReaperNode %s: %v", name, err)
	}
}

// getNode returns the ReaperNode, or nil when it does not exist.
func getNode(t *testing.T, name string) *reaperv1alpha1.ReaperNode {
	t.Helper()
	node := &reaperv1alpha1.ReaperNode{}
	err := kube.Get(context.Background(), client.ObjectKey{Name: name}, node)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("get ReaperNode %s: %v", name, err)
	}
	return node
}

// waitForPhase waits until the ReaperNode has the phase and returns it.
func waitForPhase(t *testing.T, name string, phase reaperv1alpha1.ReaperNodePhase, timeout time.Duration) *reaperv1alpha1.ReaperNode {
	t.Helper()
	var node *reaperv1alpha1.ReaperNode
	waitFor(t, timeout, fmt.Sprintf("ReaperNode %s has phase %s", name, phase), func() (bool, string) {
		node = getNode(t, name)
		if node == nil {
			return false, "the ReaperNode is gone"
		}
		return node.Status.Phase == phase, describe(node)
	})
	return node
}

// describe returns the phase and conditions of a ReaperNode for a failure message.
func describe(node *reaperv1alpha1.ReaperNode) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase %q, finalizers %q", node.Status.Phase, node.Finalizers)
	for _, c := range node.Status.Conditions {
		fmt.Fprintf(&b, "\n  %s=%s %s: %s", c.Type, c.Status, c.Reason, c.Message)
	}
	return b.String()
}

// condition returns the ReaperNode's condition of the type, failing the test when it is
// missing.
func condition(t *testing.T, node *reaperv1alpha1.ReaperNode, conditionType string) metav1.Condition {
	t.Helper()
	c := meta.FindStatusCondition(node.Status.Conditions, conditionType)
	if c == nil {
		t.Fatalf("ReaperNode %s has no condition %s: %s", node.Name, conditionType, describe(node))
	}
	return *c
}

// waitFor polls check every 200ms until it returns true, and fails the test with the last
// state check returned after the timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	last := ""
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var ok bool
		if ok, last = check(); ok {
			return
		}
	}
	t.Fatalf("timed out after %s waiting until %s; last state: %s", timeout, what, last)
}

// events returns the reasons of the events about the ReaperNode, oldest first.
func events(t *testing.T, name string) []string {
	t.Helper()
	var list eventsv1.EventList
	if err := kube.List(context.Background(), &list); err != nil {
		t.Fatalf("list events: %v", err)
	}
	slices.SortFunc(list.Items, func(a, b eventsv1.Event) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	var reasons []string
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Regarding.Kind == "ReaperNode" {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}

// waitForEvent waits until an event with the reason is recorded about the ReaperNode.
func waitForEvent(t *testing.T, name, reason string) {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("an event %s about ReaperNode %s", reason, name), func() (bool, string) {
		reasons := events(t, name)
		return slices.Contains(reasons, reason), fmt.Sprintf("events %q", reasons)
	})
}

// setControllerReadyFalse sets the condition Ready to False with reason Uninstalling, as
// reaper-controller does once the agent reports the phase Uninstalling.
func setControllerReadyFalse(t *testing.T, name string) {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": reaperv1alpha1.GroupVersion.String(),
		"kind":       "ReaperNode",
		"metadata":   map[string]any{"name": name},
		"status": map[string]any{"conditions": []any{map[string]any{
			"type": reaperv1alpha1.ConditionReady, "status": "False", "reason": reaperv1alpha1.ReasonUninstalling,
			"message": "the node is being reverted", "lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
		}}},
	}}
	err := kube.Status().Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("reaper-controller"))
	if err != nil {
		t.Fatalf("apply Ready=False as reaper-controller: %v", err)
	}
}

// deleteNode deletes the ReaperNode.
func deleteNode(t *testing.T, name string) {
	t.Helper()
	node := &reaperv1alpha1.ReaperNode{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := kube.Delete(context.Background(), node); err != nil {
		t.Fatalf("delete ReaperNode %s: %v", name, err)
	}
}

// waitUntilGone waits until the ReaperNode no longer exists.
func waitUntilGone(t *testing.T, name string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("ReaperNode %s is gone", name), func() (bool, string) {
		node := getNode(t, name)
		if node == nil {
			return true, ""
		}
		return false, describe(node)
	})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// tail returns the end of a log file for a failure message.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "(no log yet)"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-10):], "\n")
}
