package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// shimBinary is the file name of Reaper's containerd shim.
const shimBinary = "containerd-shim-reaper-v2"

func TestSandboxHostNetwork(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "sandbox", s.handler)

	status, info := s.podStatus(t, p)
	if status.GetId() != p.id {
		t.Errorf("PodSandboxStatus returned sandbox id %q, expected %q", status.GetId(), p.id)
	}
	if status.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("sandbox state is %v, expected SANDBOX_READY", status.GetState())
	}
	if status.GetRuntimeHandler() != p.handler {
		t.Errorf("sandbox runtime handler is %q, expected %q", status.GetRuntimeHandler(), p.handler)
	}
	if got, want := status.GetMetadata().GetName(), p.config.GetMetadata().GetName(); got != want {
		t.Errorf("sandbox metadata name is %q, expected %q", got, want)
	}
	if got := status.GetLinux().GetNamespaces().GetOptions().GetNetwork(); got != runtimeapi.NamespaceMode_NODE {
		t.Errorf("sandbox network namespace mode is %v, expected NODE for a hostNetwork pod", got)
	}

	ctx, cancel := callContext()
	defer cancel()
	list, err := s.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{
		Filter: &runtimeapi.PodSandboxFilter{Id: p.id},
	})
	if err != nil {
		t.Fatalf("ListPodSandbox for %s failed: %v", p.id, err)
	}
	if len(list.GetItems()) != 1 {
		t.Fatalf("ListPodSandbox filtered by id %s returned %d sandboxes, expected 1", p.id, len(list.GetItems()))
	}
	if got := list.GetItems()[0].GetState(); got != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("ListPodSandbox reports state %v, expected SANDBOX_READY", got)
	}

	// The sandbox is a real process on the host, and it shares the host's network namespace.
	if info.Pid == 0 {
		t.Fatalf("verbose PodSandboxStatus reports no sandbox pid (runtime type %q)", info.RuntimeType)
	}
	pid := fmt.Sprint(info.Pid)
	if _, err := lookupProcess(int(info.Pid)); err != nil {
		t.Fatalf("sandbox process %s is not running on the host: %v", pid, err)
	}
	exe, _ := os.Readlink(filepath.Join("/proc", pid, "exe"))
	t.Logf("sandbox %s: pid %s, executable %q, runtime type %q", p.id, pid, exe, info.RuntimeType)

	sandboxNet, err := namespaceOf(pid, "net")
	if err != nil {
		t.Fatal(err)
	}
	hostNet, err := namespaceOf("self", "net")
	if err != nil {
		t.Fatal(err)
	}
	if sandboxNet != hostNet {
		t.Errorf("sandbox process %s is in network namespace %s, expected the host's %s", pid, sandboxNet, hostNet)
	}
}

func TestPodCleanup(t *testing.T) {
	s := start(t)
	socketsBefore, err := socketsIn(s.socketDir())
	if err != nil {
		t.Fatal(err)
	}

	p := s.runPod(t, "cleanup", s.handler)
	_, podInfo := s.podStatus(t, p)
	marker := "reaper-e2e-cleanup-" + randomSuffix(t)
	// The container starts a second shell in the background and prints its pid. That shell
	// outlives the container's main process unless the runtime kills the whole container.
	script := `/bin/sh -c 'while :; do sleep 1; done' "$1-child" &
echo "child=$!"
while :; do sleep 1; done`
	c := s.runContainer(t, p, shellConfig("worker", script, marker))

	entries := waitLogLinePrefix(t, c, "stdout", "child=")
	childPid, err := pidFromLine(entries, "child=")
	if err != nil {
		t.Fatal(err)
	}
	_, info := s.containerStatus(t, c)
	if info.Pid == 0 {
		t.Fatalf("verbose ContainerStatus of %s reports no pid", c.id)
	}

	var tracked []hostProcess
	for _, pid := range []int{int(info.Pid), childPid, int(podInfo.Pid)} {
		if pid == 0 {
			continue
		}
		proc, err := lookupProcess(pid)
		if err != nil {
			t.Fatalf("process of the running pod not found on the host: %v", err)
		}
		tracked = append(tracked, proc)
	}

	s.stopContainer(t, c, 10)
	s.removeContainer(t, c)
	s.stopAndRemovePod(t, p)

	s.checkPodGone(t, podTrace{
		pod:           p,
		containerIDs:  []string{c.id},
		processes:     tracked,
		markers:       []string{marker},
		socketsBefore: socketsBefore,
	})
}

func TestMissingCommand(t *testing.T) {
	s := start(t)
	cases := []struct {
		name    string
		command string
	}{
		{name: "absolute path", command: "/nonexistent/binary"},
		{name: "bare name", command: "no-such-command-xyz"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			socketsBefore, err := socketsIn(s.socketDir())
			if err != nil {
				t.Fatal(err)
			}
			p := s.runPod(t, "missing", s.handler)

			var containerIDs []string
			c, err := s.tryCreateContainer(p, containerConfig("missing", tc.command))
			if err == nil {
				containerIDs = append(containerIDs, c.id)
				err = s.tryStartContainer(c)
				if err == nil {
					status, _, statusErr := s.tryContainerStatus(c)
					t.Fatalf("CreateContainer and StartContainer both succeeded for the missing command %q; container status: %v %v",
						tc.command, status, statusErr)
				}
				t.Logf("StartContainer failed: %v", err)
			} else {
				t.Logf("CreateContainer failed: %v", err)
			}
			if !strings.Contains(err.Error(), tc.command) {
				t.Errorf("the error for a missing command does not name %q: %v", tc.command, err)
			}

			if c != nil {
				s.removeContainer(t, c)
			}
			s.stopAndRemovePod(t, p)
			s.checkPodGone(t, podTrace{pod: p, containerIDs: containerIDs, socketsBefore: socketsBefore})
		})
	}
}

// podTrace lists what a pod left on the host while it ran, to check it is gone afterwards.
type podTrace struct {
	pod           *pod
	containerIDs  []string
	processes     []hostProcess
	markers       []string
	socketsBefore []string
}

// checkPodGone checks that a removed pod left no process, shim, socket, state directory, FIFO
// or cgroup behind. Processes may take a moment to be reaped, so each check is polled.
func (s *suite) checkPodGone(t *testing.T, trace podTrace) {
	t.Helper()
	ids := append([]string{trace.pod.id}, trace.containerIDs...)

	t.Run("processes", func(t *testing.T) {
		for _, proc := range trace.processes {
			waitFor(t, proc.String()+" to exit", func() (bool, error) {
				return !proc.alive(), fmt.Errorf("%s is still running: %s", proc, cmdlineOf(proc.pid))
			})
		}
		waitFor(t, "no process mentioning the pod", func() (bool, error) {
			found, err := processesMentioning(append(ids, trace.markers...)...)
			if err != nil {
				return false, err
			}
			return len(found) == 0, fmt.Errorf("processes still mention the pod: %v", found)
		})
	})

	t.Run("shim", func(t *testing.T) {
		waitFor(t, "the shim of sandbox "+trace.pod.id+" to exit", func() (bool, error) {
			procs, err := listProcesses()
			if err != nil {
				return false, err
			}
			var shims []processInfo
			for _, p := range procs {
				exe := strings.TrimSuffix(p.exe, " (deleted)")
				if filepath.Base(exe) == shimBinary &&
					(strings.Contains(p.cmdline, trace.pod.id) || strings.Contains(p.cwd, trace.pod.id)) {
					shims = append(shims, p)
				}
			}
			return len(shims) == 0, fmt.Errorf("shim processes still serve the sandbox: %v", shims)
		})
	})

	t.Run("sockets", func(t *testing.T) {
		addedSockets := func() ([]string, error) {
			after, err := socketsIn(s.socketDir())
			if err != nil {
				return nil, err
			}
			var added []string
			for _, name := range after {
				if !slices.Contains(trace.socketsBefore, name) {
					added = append(added, name)
				}
			}
			return added, nil
		}
		waitFor(t, "no new socket in "+s.socketDir(), func() (bool, error) {
			added, err := addedSockets()
			if err != nil {
				return false, err
			}
			return len(added) == 0, fmt.Errorf("sockets created by the pod are left: %v", added)
		})
	})

	t.Run("state", func(t *testing.T) {
		found, err := pathsMentioning(s.dir, ids...)
		if err != nil {
			t.Fatal(err)
		}
		if len(found) > 0 {
			t.Errorf("containerd's directory still has state, FIFOs or bundles of the pod: %v", found)
		}
	})

	t.Run("cgroups", func(t *testing.T) {
		mounts, err := cgroupMounts()
		if err != nil {
			t.Fatal(err)
		}
		parent := trace.pod.config.GetLinux().GetCgroupParent()
		for _, mount := range mounts {
			found, err := pathsMentioning(filepath.Join(mount, parent), ids...)
			if err != nil {
				t.Fatal(err)
			}
			if len(found) > 0 {
				t.Errorf("cgroups of the pod are left: %v", found)
			}
		}
	})
}

// socketDir returns the shim socket directory, the socket_dir that hack/containerd-up.sh
// writes into containerd's config.
func (s *suite) socketDir() string {
	return filepath.Join(s.dir, "s")
}

// shimOf returns the pid of the shim that runs a container's process, its parent, and fails t
// unless that parent runs the Reaper shim binary.
func shimOf(t *testing.T, pid int) int {
	t.Helper()
	value, err := statusField(pid, "PPid")
	if err != nil {
		t.Fatal(err)
	}
	parent, err := strconv.Atoi(value)
	if err != nil {
		t.Fatalf("pid %d has an invalid PPid %q: %v", pid, value, err)
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", parent))
	if err != nil {
		t.Fatalf("read the executable of pid %d, the parent of pid %d: %v", parent, pid, err)
	}
	if base := filepath.Base(strings.TrimSuffix(exe, " (deleted)")); base != shimBinary {
		t.Fatalf("the parent of pid %d is pid %d running %s, expected the shim %s", pid, parent, exe, shimBinary)
	}
	return parent
}

func cmdlineOf(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "(command line unreadable)"
	}
	return strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
}
