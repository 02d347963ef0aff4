package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// nodeName is the Node of hack/cluster-up.sh.
	nodeName = "reaper-node"
	// releaseNamespace holds the Helm release, the controller and the agent DaemonSet.
	releaseNamespace = "reaper-system"
	// workloadNamespace is the opted-in namespace of the reaper pods.
	workloadNamespace = "reaper-e2e"
	// optInLabel is the chart's default admission.namespaceLabel.
	optInLabel = "reaper.dev/allowed"
	// readyLabel is the label the controller keeps on a Node that runs Reaper.
	readyLabel = "reaper.dev/ready"

	// waitTimeout bounds each wait for a pod, a rollout or a status.
	waitTimeout = 3 * time.Minute
	// pollInterval is how often a wait checks again.
	pollInterval = time.Second
)

// cluster is the environment of the suite, from the variables hack/e2e-cluster.sh sets.
type cluster struct {
	dir         string
	kubectlBin  string
	helmBin     string
	values      string
	version     string
	nextVersion string
	placeholder string
	httpget     string
	repoRoot    string
	chart       string
}

// loadCluster reads the suite's environment and fails the test naming each missing variable.
func loadCluster(t *testing.T) *cluster {
	t.Helper()
	var missing []string
	get := func(name string) string {
		value := os.Getenv(name)
		if value == "" {
			missing = append(missing, name)
		}
		return value
	}
	c := &cluster{
		dir:         get("CLUSTER_DIR"),
		kubectlBin:  get("CLUSTER_KUBECTL"),
		helmBin:     get("CLUSTER_HELM"),
		values:      get("CLUSTER_VALUES"),
		version:     get("REAPER_VERSION"),
		nextVersion: get("REAPER_NEXT_VERSION"),
		placeholder: get("PLACEHOLDER_IMAGE"),
		httpget:     get("HTTPGET_IMAGE"),
	}
	if len(missing) > 0 {
		t.Fatalf("%s not set: this suite needs the cluster that hack/e2e-cluster.sh starts; run make e2e-cluster", strings.Join(missing, ", "))
	}

	_, file, _, _ := runtime.Caller(0)
	c.repoRoot = filepath.Join(filepath.Dir(file), "..", "..")
	c.chart = filepath.Join(c.repoRoot, "charts", "reaper")
	return c
}

// run runs name with args and returns its combined output, and an error naming the command and
// its output when it fails.
func run(stdin, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// kubectl runs kubectl with the cluster's kubeconfig.
func (c *cluster) kubectl(args ...string) (string, error) {
	return run("", c.kubectlBin, append([]string{"--kubeconfig", filepath.Join(c.dir, "kubeconfig")}, args...)...)
}

// mustKubectl runs kubectl and fails the test when it fails.
func (c *cluster) mustKubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.kubectl(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// apply creates or updates obj, such as a *corev1.Pod with its TypeMeta set, and fails the test
// when kubectl rejects it.
func (c *cluster) apply(t *testing.T, obj any) {
	t.Helper()
	if _, err := c.applyErr(obj); err != nil {
		t.Fatal(err)
	}
}

// applyErr runs kubectl apply with obj as JSON.
func (c *cluster) applyErr(obj any) (string, error) {
	manifest, err := json.Marshal(obj)
	if err != nil {
		return "", fmt.Errorf("encode %T: %w", obj, err)
	}
	return run(string(manifest), c.kubectlBin, "--kubeconfig", filepath.Join(c.dir, "kubeconfig"), "apply", "-f", "-")
}

// helm runs helm with the cluster's kubeconfig and fails the test when it fails.
func (c *cluster) helm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run("", c.helmBin, append([]string{"--kubeconfig", filepath.Join(c.dir, "kubeconfig")}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// background is a command that runs while the test goes on.
type background struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

// startHelm starts helm with the cluster's kubeconfig and returns without waiting for it.
func (c *cluster) startHelm(t *testing.T, args ...string) *background {
	t.Helper()
	b := &background{cmd: exec.Command(c.helmBin, append([]string{"--kubeconfig", filepath.Join(c.dir, "kubeconfig")}, args...)...)}
	b.cmd.Stdout = &b.out
	b.cmd.Stderr = &b.out
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start helm %s: %v", strings.Join(args, " "), err)
	}
	t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			_ = b.cmd.Process.Kill()
			_ = b.cmd.Wait()
		}
	})
	return b
}

// wait waits for the command and returns an error with its output when it failed.
func (b *background) wait() error {
	if err := b.cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(b.cmd.Args, " "), err, strings.TrimSpace(b.out.String()))
	}
	return nil
}

// jsonpath prints the field of an object by a kubectl JSONPath expression, such as
// {.status.phase}, or "" when the object or field is missing.
func (c *cluster) jsonpath(namespace, object, expression string) string {
	out, err := c.kubectl("-n", namespace, "get", object, "-o", "jsonpath="+expression)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// eventually calls check until it returns nil, and fails the test with check's last error
// after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done after %s: %v", what, timeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// waitPodPhase waits until the pod reaches phase, and fails with its description when it ends
// in another phase or the wait times out.
func (c *cluster) waitPodPhase(t *testing.T, namespace, pod, phase string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		current := c.jsonpath(namespace, "pod/"+pod, "{.status.phase}")
		if current == phase {
			return
		}
		ended := current == "Succeeded" || current == "Failed"
		if ended || time.Now().After(deadline) {
			describe, _ := c.kubectl("-n", namespace, "describe", "pod", pod)
			t.Fatalf("pod %s/%s is in phase %q, expected %s:\n%s", namespace, pod, current, phase, describe)
		}
		time.Sleep(pollInterval)
	}
}

// waitPodReady waits until the pod's Ready condition is True.
func (c *cluster) waitPodReady(t *testing.T, namespace, pod string) {
	t.Helper()
	_, err := c.kubectl("-n", namespace, "wait", "--for=condition=Ready", "pod/"+pod, "--timeout", waitTimeout.String())
	if err != nil {
		describe, _ := c.kubectl("-n", namespace, "describe", "pod", pod)
		t.Fatalf("pod %s/%s did not become Ready: %v\n%s", namespace, pod, err, describe)
	}
}

// processAlive reports whether pid runs on the node with a command line that contains marker.
// The node's processes share this machine's PID namespace.
func processAlive(pid, marker string) bool {
	cmdline, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
	return err == nil && strings.Contains(string(cmdline), marker)
}

// hostPID returns the node's PID that the first container of a reaper pod logs in a line
// "pid=PID", and fails unless a process with that PID and marker in its command line runs.
func (c *cluster) hostPID(t *testing.T, namespace, pod, marker string) string {
	t.Helper()
	var pid string
	eventually(t, waitTimeout, "pid line in the log of "+pod, func() error {
		out, err := c.kubectl("-n", namespace, "logs", pod)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(out, "\n") {
			if value, ok := strings.CutPrefix(line, "pid="); ok {
				pid = strings.TrimSpace(value)
				if _, err := strconv.Atoi(pid); err != nil {
					t.Fatalf("pod %s logged %q, which contains no PID", pod, line)
				}
				return nil
			}
		}
		return errors.New("no pid= line yet in: " + out)
	})
	if !processAlive(pid, marker) {
		t.Fatalf("pod %s logged PID %s, but no process with %q in its command line runs on the node with that PID", pod, pid, marker)
	}
	return pid
}

// readFile returns the content of path and fails the test when it cannot be read.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return data
}
