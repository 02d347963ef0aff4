package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	// callTimeout bounds each CRI call, so a hung shim fails the test instead of the whole run.
	callTimeout = 60 * time.Second
	// waitTimeout bounds the polling for a state change, such as a container exit.
	waitTimeout = 30 * time.Second
	pollEvery   = 50 * time.Millisecond
	// execSyncTimeout is the timeout in seconds given to ExecSync, so a command that never
	// ends fails the call instead of hanging the test.
	execSyncTimeout = 20
)

// randomSuffix returns 8 random hex characters for unique names and markers.
func randomSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("read random bytes: %v", err)
	}
	return hex.EncodeToString(b)
}

func callContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), callTimeout)
}

// pod is a pod sandbox created by a test.
type pod struct {
	id      string
	handler string
	config  *runtimeapi.PodSandboxConfig
	logDir  string
}

// podConfig returns the sandbox configuration the kubelet would send for a hostNetwork pod.
func (s *suite) podConfig(t *testing.T, name string) *runtimeapi.PodSandboxConfig {
	t.Helper()
	suffix := randomSuffix(t)
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name:      name + "-" + suffix,
			Uid:       "uid-" + suffix,
			Namespace: "reaper-e2e",
		},
		LogDirectory: t.TempDir(),
		Labels:       map[string]string{"reaper.dev/e2e-test": sanitizeLabel(t.Name())},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: s.cgroupParent + "/pod" + suffix,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{
					Network: runtimeapi.NamespaceMode_NODE,
					Pid:     runtimeapi.NamespaceMode_CONTAINER,
					Ipc:     runtimeapi.NamespaceMode_POD,
				},
			},
		},
	}
}

func sanitizeLabel(name string) string {
	name = strings.NewReplacer("/", "-", "_", "-").Replace(name)
	if len(name) > 63 {
		name = name[:63]
	}
	return strings.Trim(name, "-")
}

// runPod starts a hostNetwork pod sandbox with the given handler, and registers its removal.
func (s *suite) runPod(t *testing.T, name, handler string) *pod {
	t.Helper()
	p, err := s.tryRunPod(t, name, handler)
	if err != nil {
		t.Fatalf("RunPodSandbox with handler %q failed: %v", handler, err)
	}
	return p
}

// tryRunPod is runPod returning the error, for tests that time the call or expect it to fail.
func (s *suite) tryRunPod(t *testing.T, name, handler string) (*pod, error) {
	t.Helper()
	s.requireHandler(t, handler)
	config := s.podConfig(t, name)

	ctx, cancel := callContext()
	defer cancel()
	resp, err := s.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: config, RuntimeHandler: handler})
	if err != nil {
		return nil, err
	}
	p := &pod{id: resp.GetPodSandboxId(), handler: handler, config: config, logDir: config.GetLogDirectory()}
	t.Cleanup(func() { s.removePodQuietly(t, p) })
	return p, nil
}

// removePodQuietly stops and removes a pod at the end of a test and only logs failures: the
// test that cares about removal checks the calls itself.
func (s *suite) removePodQuietly(t *testing.T, p *pod) {
	ctx, cancel := callContext()
	defer cancel()
	if _, err := s.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
		t.Logf("cleanup: StopPodSandbox %s failed: %v", p.id, err)
	}
	if _, err := s.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
		t.Logf("cleanup: RemovePodSandbox %s failed: %v", p.id, err)
	}
}

// stopAndRemovePod stops and removes a pod, failing t on an error.
func (s *suite) stopAndRemovePod(t *testing.T, p *pod) {
	t.Helper()
	ctx, cancel := callContext()
	defer cancel()
	if _, err := s.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
		t.Fatalf("StopPodSandbox %s failed: %v", p.id, err)
	}
	if _, err := s.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
		t.Fatalf("RemovePodSandbox %s failed: %v", p.id, err)
	}
}

// podStatus returns the verbose sandbox status and the sandbox info containerd adds to it.
func (s *suite) podStatus(t *testing.T, p *pod) (*runtimeapi.PodSandboxStatus, sandboxInfo) {
	t.Helper()
	ctx, cancel := callContext()
	defer cancel()
	resp, err := s.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.id, Verbose: true})
	if err != nil {
		t.Fatalf("PodSandboxStatus %s failed: %v", p.id, err)
	}
	var info sandboxInfo
	if raw, ok := resp.GetInfo()["info"]; ok {
		if err := json.Unmarshal([]byte(raw), &info); err != nil {
			t.Fatalf("PodSandboxStatus %s: invalid verbose info: %v", p.id, err)
		}
	}
	return resp.GetStatus(), info
}

// sandboxInfo is the part of containerd's verbose sandbox status the tests read.
type sandboxInfo struct {
	Pid         uint32 `json:"pid"`
	RuntimeType string `json:"runtimeType"`
}

// containerInfo is the part of containerd's verbose container status the tests read.
type containerInfo struct {
	Pid         uint32 `json:"pid"`
	RuntimeType string `json:"runtimeType"`
	RuntimeSpec struct {
		Process struct {
			Env          []string `json:"env"`
			Cwd          string   `json:"cwd"`
			Args         []string `json:"args"`
			Capabilities struct {
				Bounding  []string `json:"bounding"`
				Effective []string `json:"effective"`
			} `json:"capabilities"`
			NoNewPrivileges bool `json:"noNewPrivileges"`
			// OOMScoreAdj is the value CRI requests from the runtime, after CRI's own clamp.
			OOMScoreAdj *int `json:"oomScoreAdj"`
		} `json:"process"`
	} `json:"runtimeSpec"`
}

// containerConfig returns a container that runs command with the placeholder image. The
// command is a host path, which the image does not contain.
func containerConfig(name string, command ...string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: placeholderImage},
		Command:  command,
		LogPath:  name + ".log",
		Linux:    &runtimeapi.LinuxContainerConfig{},
	}
}

// shellConfig returns a container that runs script with the host's /bin/sh.
func shellConfig(name, script string, args ...string) *runtimeapi.ContainerConfig {
	command := append([]string{"/bin/sh", "-c", script, name}, args...)
	return containerConfig(name, command...)
}

// container is a container created by a test.
type container struct {
	id      string
	logPath string
}

func (s *suite) tryCreateContainer(p *pod, config *runtimeapi.ContainerConfig) (*container, error) {
	ctx, cancel := callContext()
	defer cancel()
	resp, err := s.runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId:  p.id,
		Config:        config,
		SandboxConfig: p.config,
	})
	if err != nil {
		return nil, err
	}
	return &container{id: resp.GetContainerId(), logPath: filepath.Join(p.logDir, config.GetLogPath())}, nil
}

func (s *suite) tryStartContainer(c *container) error {
	ctx, cancel := callContext()
	defer cancel()
	_, err := s.runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.id})
	return err
}

// runContainer creates and starts a container, failing t on an error.
func (s *suite) runContainer(t *testing.T, p *pod, config *runtimeapi.ContainerConfig) *container {
	t.Helper()
	c, err := s.tryCreateContainer(p, config)
	if err != nil {
		t.Fatalf("CreateContainer %q in pod %s failed: %v", config.GetMetadata().GetName(), p.id, err)
	}
	if err := s.tryStartContainer(c); err != nil {
		t.Fatalf("StartContainer %q (%s) failed: %v", config.GetMetadata().GetName(), c.id, err)
	}
	return c
}

func (s *suite) stopContainer(t *testing.T, c *container, timeout int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout+time.Duration(timeout)*time.Second)
	defer cancel()
	if _, err := s.runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.id, Timeout: timeout}); err != nil {
		t.Fatalf("StopContainer %s (timeout %d s) failed: %v", c.id, timeout, err)
	}
}

func (s *suite) removeContainer(t *testing.T, c *container) {
	t.Helper()
	ctx, cancel := callContext()
	defer cancel()
	if _, err := s.runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.id}); err != nil {
		t.Fatalf("RemoveContainer %s failed: %v", c.id, err)
	}
}

// containerStatus returns the verbose container status and containerd's info for it.
func (s *suite) containerStatus(t *testing.T, c *container) (*runtimeapi.ContainerStatus, containerInfo) {
	t.Helper()
	status, info, err := s.tryContainerStatus(c)
	if err != nil {
		t.Fatal(err)
	}
	return status, info
}

func (s *suite) tryContainerStatus(c *container) (*runtimeapi.ContainerStatus, containerInfo, error) {
	ctx, cancel := callContext()
	defer cancel()
	resp, err := s.runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.id, Verbose: true})
	if err != nil {
		return nil, containerInfo{}, fmt.Errorf("ContainerStatus %s failed: %w", c.id, err)
	}
	var info containerInfo
	if raw, ok := resp.GetInfo()["info"]; ok {
		if err := json.Unmarshal([]byte(raw), &info); err != nil {
			return nil, containerInfo{}, fmt.Errorf("ContainerStatus %s: invalid verbose info: %w", c.id, err)
		}
	}
	return resp.GetStatus(), info, nil
}

// containerPid returns the host pid that the verbose ContainerStatus reports for a running
// container.
func (s *suite) containerPid(t *testing.T, c *container) int {
	t.Helper()
	status, info := s.containerStatus(t, c)
	if status.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container %s is in state %v, expected CONTAINER_RUNNING", c.id, status.GetState())
	}
	if info.Pid == 0 {
		t.Fatalf("verbose ContainerStatus of %s reports no pid", c.id)
	}
	return int(info.Pid)
}

// tryExecSync runs cmd in the container through CRI ExecSync. timeout is the ExecSync timeout
// in seconds, which containerd enforces. The call itself is bounded by callTimeout as well.
func (s *suite) tryExecSync(c *container, timeout int64, cmd ...string) (*runtimeapi.ExecSyncResponse, error) {
	ctx, cancel := callContext()
	defer cancel()
	return s.runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: c.id, Cmd: cmd, Timeout: timeout})
}

// execSync is tryExecSync failing t on an error.
func (s *suite) execSync(t *testing.T, c *container, cmd ...string) *runtimeapi.ExecSyncResponse {
	t.Helper()
	resp, err := s.tryExecSync(c, execSyncTimeout, cmd...)
	if err != nil {
		t.Fatalf("ExecSync %q in container %s failed: %v", cmd, c.id, err)
	}
	return resp
}

// waitExited polls until the container has exited and returns its final status.
func (s *suite) waitExited(t *testing.T, c *container) *runtimeapi.ContainerStatus {
	t.Helper()
	var status *runtimeapi.ContainerStatus
	waitFor(t, "container "+c.id+" to exit", func() (bool, error) {
		var err error
		status, _, err = s.tryContainerStatus(c)
		if err != nil {
			return false, err
		}
		return status.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED, nil
	})
	return status
}

// waitFor polls cond until it returns true, and fails t after waitTimeout. The last error
// cond returned is part of the failure message.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var lastErr error
	for {
		done, err := cond()
		if done {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last error: %v)", waitTimeout, what, lastErr)
		}
		time.Sleep(pollEvery)
	}
}

// logEntry is one line of a CRI container log: "<RFC3339Nano time> <stream> <P|F> <content>".
type logEntry struct {
	time    time.Time
	stream  string
	partial bool
	content string
}

// readLog parses a CRI container log. A line that breaks the format is an error.
func readLog(path string) ([]logEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open container log: %w", err)
	}
	defer f.Close()

	var entries []logEntry
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; scanner.Scan(); n++ {
		line := scanner.Text()
		fields := strings.SplitN(line, " ", 4)
		if len(fields) < 3 {
			return nil, fmt.Errorf("%s line %d: %q does not have the CRI log format", path, n, line)
		}
		ts, err := time.Parse(time.RFC3339Nano, fields[0])
		if err != nil {
			return nil, fmt.Errorf("%s line %d: invalid timestamp: %w", path, n, err)
		}
		if fields[1] != "stdout" && fields[1] != "stderr" {
			return nil, fmt.Errorf("%s line %d: stream %q is neither stdout nor stderr", path, n, fields[1])
		}
		if fields[2] != "P" && fields[2] != "F" {
			return nil, fmt.Errorf("%s line %d: tag %q is neither P nor F", path, n, fields[2])
		}
		entry := logEntry{time: ts, stream: fields[1], partial: fields[2] == "P"}
		if len(fields) == 4 {
			entry.content = fields[3]
		}
		entries = append(entries, entry)
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return entries, nil
}

// logLines joins partial entries and returns the complete lines of one stream.
func logLines(entries []logEntry, stream string) []string {
	var lines []string
	var pending strings.Builder
	for _, e := range entries {
		if e.stream != stream {
			continue
		}
		pending.WriteString(e.content)
		if !e.partial {
			lines = append(lines, pending.String())
			pending.Reset()
		}
	}
	if pending.Len() > 0 {
		lines = append(lines, pending.String())
	}
	return lines
}

// waitLogLine polls the container log until stream has the line, and returns the entries.
func waitLogLine(t *testing.T, c *container, stream, line string) []logEntry {
	t.Helper()
	var entries []logEntry
	waitFor(t, fmt.Sprintf("line %q on %s in %s", line, stream, c.logPath), func() (bool, error) {
		var err error
		entries, err = readLog(c.logPath)
		if err != nil {
			return false, err
		}
		for _, l := range logLines(entries, stream) {
			if l == line {
				return true, nil
			}
		}
		return false, nil
	})
	return entries
}

// waitLogLinePrefix polls the container log until stream has a line starting with prefix.
func waitLogLinePrefix(t *testing.T, c *container, stream, prefix string) []logEntry {
	t.Helper()
	var entries []logEntry
	waitFor(t, fmt.Sprintf("a line starting with %q on %s in %s", prefix, stream, c.logPath), func() (bool, error) {
		var err error
		entries, err = readLog(c.logPath)
		if err != nil {
			return false, err
		}
		for _, l := range logLines(entries, stream) {
			if strings.HasPrefix(l, prefix) {
				return true, nil
			}
		}
		return false, nil
	})
	return entries
}

// pidFromLine returns the pid printed on the first stdout line "<prefix><pid>".
func pidFromLine(entries []logEntry, prefix string) (int, error) {
	for _, l := range logLines(entries, "stdout") {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(rest))
			if err != nil {
				return 0, fmt.Errorf("invalid pid in the log line %q: %w", l, err)
			}
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no stdout line starts with %q", prefix)
}
