package e2e

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	mebibyte = 1 << 20
	// cpuQuota and cpuPeriod allow the container 20 ms of CPU time every 100 ms.
	cpuQuota  = 20000
	cpuPeriod = 100000
)

// withResources sets the container's memory limit and CPU quota, as the kubelet does for a
// container with resources.limits.
func withResources(config *runtimeapi.ContainerConfig, memoryLimit int64) *runtimeapi.ContainerConfig {
	config.Linux.Resources = &runtimeapi.LinuxContainerResources{
		MemoryLimitInBytes: memoryLimit,
		CpuQuota:           cpuQuota,
		CpuPeriod:          cpuPeriod,
	}
	return config
}

// containerCgroups returns the memory and cpu cgroups of a container's process, and fails t
// unless each one's path ends with the container id.
func containerCgroups(t *testing.T, c *container, pid int) (memory, cpu processCgroup) {
	t.Helper()
	var err error
	if memory, err = cgroupOf(pid, "memory"); err != nil {
		t.Fatal(err)
	}
	if cpu, err = cgroupOf(pid, "cpu"); err != nil {
		t.Fatal(err)
	}
	for _, cg := range []processCgroup{memory, cpu} {
		if path.Base(cg.path) != c.id {
			t.Errorf("pid %d is in cgroup %s (%s), expected a path that ends with the container id %s", pid, cg.path, cg.dir, c.id)
		}
	}
	return memory, cpu
}

func TestCgroupLimits(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "limits", s.handler)
	c := s.runContainer(t, p, withResources(containerConfig("limited", "/bin/sleep", "600"), 100*mebibyte))
	pid := s.containerPid(t, c)

	memory, cpu := containerCgroups(t, c, pid)
	t.Logf("pid %d: memory cgroup %s, cpu cgroup %s (cgroup v2: %t)", pid, memory.dir, cpu.dir, memory.v2)
	if parent := p.config.GetLinux().GetCgroupParent(); !strings.HasPrefix(memory.path, parent+"/") {
		t.Errorf("memory cgroup %s is not below the pod's cgroup parent %s", memory.path, parent)
	}

	limit, err := memory.memoryLimit()
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(100 * mebibyte); limit != want {
		t.Errorf("the memory limit of cgroup %s is %s, expected %s (100 MiB)", memory.dir, limit, want)
	}
	quota, err := cpu.cpuMax()
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d %d", cpuQuota, cpuPeriod); quota != want {
		t.Errorf("the CPU quota and period of cgroup %s are %q, expected %q", cpu.dir, quota, want)
	}

	// UpdateContainerResources is what an in-place pod resize sends.
	ctx, cancel := callContext()
	defer cancel()
	_, err = s.runtime.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{
		ContainerId: c.id,
		Linux: &runtimeapi.LinuxContainerResources{
			MemoryLimitInBytes: 200 * mebibyte,
			CpuQuota:           cpuQuota,
			CpuPeriod:          cpuPeriod,
		},
	})
	if err != nil {
		t.Fatalf("UpdateContainerResources to 200 MiB failed: %v", err)
	}
	limit, err = memory.memoryLimit()
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(200 * mebibyte); limit != want {
		t.Errorf("after UpdateContainerResources the memory limit of cgroup %s is %s, expected %s (200 MiB)", memory.dir, limit, want)
	}
}

func TestContainerStats(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "stats", s.handler)
	// The loop is busy, so the container uses CPU time, at most its 20 % quota.
	script := `i=0; while :; do i=$((i+1)); done`
	c := s.runContainer(t, p, withResources(shellConfig("busy", script), 100*mebibyte))

	var stats *runtimeapi.ContainerStats
	waitFor(t, "ContainerStats to report CPU and memory usage", func() (bool, error) {
		ctx, cancel := callContext()
		defer cancel()
		resp, err := s.runtime.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: c.id})
		if err != nil {
			return false, fmt.Errorf("ContainerStats %s failed: %w", c.id, err)
		}
		stats = resp.GetStats()
		cpu := stats.GetCpu().GetUsageCoreNanoSeconds().GetValue()
		memory := max(stats.GetMemory().GetWorkingSetBytes().GetValue(), stats.GetMemory().GetUsageBytes().GetValue())
		return cpu > 0 && memory > 0, fmt.Errorf("ContainerStats reports CPU %d ns and memory %d bytes: %v", cpu, memory, stats)
	})

	if got := stats.GetAttributes().GetId(); got != c.id {
		t.Errorf("ContainerStats reports container id %q, expected %q", got, c.id)
	}
	t.Logf("ContainerStats: CPU %d ns, memory working set %d bytes, usage %d bytes",
		stats.GetCpu().GetUsageCoreNanoSeconds().GetValue(),
		stats.GetMemory().GetWorkingSetBytes().GetValue(),
		stats.GetMemory().GetUsageBytes().GetValue())

	ctx, cancel := callContext()
	defer cancel()
	list, err := s.runtime.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{
		Filter: &runtimeapi.ContainerStatsFilter{Id: c.id},
	})
	if err != nil {
		t.Fatalf("ListContainerStats for %s failed: %v", c.id, err)
	}
	if len(list.GetStats()) != 1 {
		t.Fatalf("ListContainerStats filtered by id %s returned %d entries, expected 1", c.id, len(list.GetStats()))
	}
	if got := list.GetStats()[0].GetCpu().GetUsageCoreNanoSeconds().GetValue(); got == 0 {
		t.Errorf("ListContainerStats reports no CPU usage for the busy container %s", c.id)
	}
}

func TestOOMKilled(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "oom", s.handler)
	// The string doubles until the shell needs more than the 32 MiB limit.
	script := `x=a; while true; do x=$x$x; done`
	c := s.runContainer(t, p, withResources(shellConfig("hog", script), 32*mebibyte))

	status := s.waitExited(t, c)
	t.Logf("the memory hog exited with code %d, reason %q, message %q", status.GetExitCode(), status.GetReason(), status.GetMessage())
	if status.GetReason() != "OOMKilled" {
		t.Errorf("the container that exceeded its 32 MiB limit ended with reason %q (exit code %d), expected OOMKilled",
			status.GetReason(), status.GetExitCode())
	}
	if status.GetExitCode() != 137 {
		t.Errorf("the OOM-killed container exited with code %d, expected 137 (SIGKILL)", status.GetExitCode())
	}
}

// TestCgroupRemoved checks that the container's cgroup directories are gone once its pod is
// removed.
func TestCgroupRemoved(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "cgremove", s.handler)
	c := s.runContainer(t, p, withResources(containerConfig("sleeper", "/bin/sleep", "600"), 100*mebibyte))
	pid := s.containerPid(t, c)
	proc, err := lookupProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if killLeftover(t, proc) {
			t.Errorf("the container's %s still ran at the end of the test and was killed", proc)
		}
	})
	memory, cpu := containerCgroups(t, c, pid)

	s.stopAndRemovePod(t, p)

	waitFor(t, proc.String()+" to exit", func() (bool, error) {
		return !proc.alive(), fmt.Errorf("%s still runs", proc)
	})
	for _, dir := range []string{memory.dir, cpu.dir} {
		waitFor(t, "cgroup "+dir+" to be removed", func() (bool, error) {
			_, err := os.Stat(dir)
			if errors.Is(err, fs.ErrNotExist) {
				return true, nil
			}
			return false, fmt.Errorf("stat %s: %w", dir, err)
		})
	}
}

// TestBackgroundChildKilled checks that a process the container started in the background
// ends when the container's main process exits, because the runtime kills the whole cgroup.
func TestBackgroundChildKilled(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "orphan", s.handler)
	dir := sharedDir(t)
	pidFile := filepath.Join(dir, "child.pid")
	exitFile := filepath.Join(dir, "exit")

	script := `sleep 300 & echo $! > "$1"; while [ ! -e "$2" ]; do sleep 0.1; done; exit 0`
	c := s.runContainer(t, p, shellConfig("parent", script, pidFile, exitFile))
	mainPid := s.containerPid(t, c)

	var childPid int
	waitFor(t, "the container to write the pid of its background child to "+pidFile, func() (bool, error) {
		data, err := os.ReadFile(pidFile)
		if err != nil || !strings.HasSuffix(string(data), "\n") {
			return false, err
		}
		childPid, err = strconv.Atoi(strings.TrimSpace(string(data)))
		return err == nil, err
	})
	child, err := lookupProcess(childPid)
	if err != nil {
		t.Fatalf("the background child is not running: %v", err)
	}
	t.Cleanup(func() {
		if killLeftover(t, child) {
			t.Errorf("the background child %s still ran at the end of the test and was killed", child)
		}
	})
	// The shell writes $! right after the fork, which can be before the child has run exec.
	waitFor(t, fmt.Sprintf("pid %d from %s to run the background child \"sleep 300\"", childPid, pidFile), func() (bool, error) {
		cmdline := cmdlineOf(childPid)
		return cmdline == "sleep 300", fmt.Errorf("pid %d runs %q", childPid, cmdline)
	})
	mainCgroup, err := cgroupOf(mainPid, "memory")
	if err != nil {
		t.Fatal(err)
	}
	childCgroup, err := cgroupOf(childPid, "memory")
	if err != nil {
		t.Fatal(err)
	}
	if childCgroup.path != mainCgroup.path {
		t.Errorf("the background child is in cgroup %s, expected the container's %s", childCgroup.path, mainCgroup.path)
	}

	if err := os.WriteFile(exitFile, nil, 0o644); err != nil {
		t.Fatalf("create the file that makes the main process exit: %v", err)
	}
	status := s.waitExited(t, c)
	if status.GetExitCode() != 0 {
		t.Errorf("the main process exited with code %d, expected 0", status.GetExitCode())
	}
	waitFor(t, "the background child "+child.String()+" to be killed", func() (bool, error) {
		return !child.alive(), fmt.Errorf("%s still runs after the main process exited", child)
	})
}
