package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/cgroups/v3"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cgroupV2InnerEnv makes the test binary run the inner part of TestContainerCgroupV2.
const cgroupV2InnerEnv = "REAPER_TEST_CGROUP_V2_INNER"

// TestContainerCgroupV2 runs a container in a cgroup v2 hierarchy. On a host with
// cgroup v1 or hybrid cgroups it mounts the host's cgroup2 hierarchy over
// /sys/fs/cgroup in a private mount namespace, so the cgroup code finds a
// unified host. Limits are not checked there, because on such a host the v2
// hierarchy has no cpu or memory controller.
func TestContainerCgroupV2(t *testing.T) {
	if os.Getenv(cgroupV2InnerEnv) != "" {
		testCgroupV2Inner(t)
		return
	}
	if os.Getuid() != 0 {
		t.Fatal("this test mounts cgroup2 and creates cgroups, so it needs root; run the unit tests as root")
	}

	if cgroups.Mode() == cgroups.Unified {
		testCgroupV2Inner(t)
		return
	}

	script := `mount -t cgroup2 none /sys/fs/cgroup && exec "$0" -test.run '^TestContainerCgroupV2$' -test.v`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, os.Args[0])
	cmd.Env = append(os.Environ(), cgroupV2InnerEnv+"=1")
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the cgroup v2 run in a private mount namespace failed: %v\n%s", err, output)
	}
	if !strings.Contains(string(output), "--- PASS: TestContainerCgroupV2") {
		t.Fatalf("the cgroup v2 run did not pass:\n%s", output)
	}
}

func testCgroupV2Inner(t *testing.T) {
	if cgroups.Mode() != cgroups.Unified {
		t.Fatalf("cgroup mode is %v after mounting cgroup2 over /sys/fs/cgroup, want unified", cgroups.Mode())
	}

	parent := fmt.Sprintf("/reaper-test-v2-%d", os.Getpid())
	path := parent + "/c"
	spec := &specs.Spec{
		Process: testProcess("sh", "-c", "sleep 30 & sleep 30"),
		Linux:   &specs.Linux{CgroupsPath: path},
	}
	t.Cleanup(func() { _ = os.Remove(filepath.Join("/sys/fs/cgroup", parent)) })

	container, err := Create(CreateOptions{Root: t.TempDir(), ID: "v2", Spec: spec, Executable: "/proc/self/exe"})
	if err != nil {
		t.Fatalf("Create failed: %v", err)
	}
	t.Cleanup(func() { _ = container.Delete(true) })

	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", container.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "0::"+path+"\n") {
		t.Errorf("/proc/%d/cgroup = %q, want the v2 entry 0::%s", container.Pid, data, path)
	}

	if err := container.Start(); err != nil {
		t.Fatalf("Start failed: %v", err)
	}
	cg, err := container.Cgroup()
	if err != nil || cg == nil {
		t.Fatalf("Cgroup() = %v, %v, want the container's cgroup", cg, err)
	}
	waitForProcs(t, cg, 3)

	if _, err := cg.Stats(); err != nil {
		t.Errorf("Stats on cgroup v2 failed: %v", err)
	}

	container.KillAll()
	_, _ = syscall.Wait4(container.Pid, nil, 0, nil)
	if err := container.Delete(false); err != nil {
		t.Fatalf("Delete failed: %v", err)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", path)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cgroup %s still exists after Delete: %v", path, err)
	}
}
