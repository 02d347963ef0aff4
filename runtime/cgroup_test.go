package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCgroupPath(t *testing.T) {
	cases := []struct {
		name    string
		input   string
		want    string
		wantErr bool
	}{
		{name: "cgroupfs path", input: "/kubepods/burstable/pod1/abc", want: "/kubepods/burstable/pod1/abc"},
		{name: "relative cgroupfs path", input: "k8s.io/abc", want: "/k8s.io/abc"},
		{name: "systemd form", input: "kubepods-burstable-pod1.slice:cri-containerd:abc",
			want: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope"},
		{name: "systemd root slice", input: "-.slice:cri-containerd:abc", want: "/cri-containerd-abc.scope"},
		{name: "two fields", input: "a.slice:abc", wantErr: true},
		{name: "not a slice", input: "kubepods:cri-containerd:abc", wantErr: true},
		{name: "empty slice component", input: "a--b.slice:p:abc", wantErr: true},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CgroupPath(tc.input)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("CgroupPath(%q) = %q, want an error", tc.input, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("CgroupPath(%q) failed: %v", tc.input, err)
			}
			if got != tc.want {
				t.Errorf("CgroupPath(%q) = %q, want %q", tc.input, got, tc.want)
			}
		})
	}
}

// memoryLimitFile returns the file that holds the memory limit of cgroup path.
func memoryLimitFile(path string) string {
	if cgroups.Mode() == cgroups.Unified {
		return filepath.Join("/sys/fs/cgroup", path, "memory.max")
	}
	return filepath.Join("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes")
}

func TestContainerCgroup(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test creates cgroups and needs root; run the unit tests as root")
	}

	path := fmt.Sprintf("/reaper-test/%d", os.Getpid())
	limit := int64(64 << 20)
	process := testProcess("sh", "-c", "sleep 30 & sleep 30")
	spec := &specs.Spec{
		Process: process,
		Linux: &specs.Linux{
			CgroupsPath: path,
			Resources:   &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}},
		},
	}
	t.Cleanup(func() { removeTestCgroup(t, filepath.Dir(path)) })

	container, err := Create(CreateOptions{Root: t.TempDir(), ID: "cg", Spec: spec, Executable: "/proc/self/exe"})
	if err != nil {
		t.Fatalf("Create failed: %v", err)
	}
	t.Cleanup(func() { _ = container.Delete(true) })

	data, err := os.ReadFile(memoryLimitFile(path))
	if err != nil {
		t.Fatalf("memory limit of cgroup %s not readable: %v", path, err)
	}
	if strings.TrimSpace(string(data)) != "67108864" {
		t.Errorf("memory limit = %s, want 67108864", data)
	}

	if err := container.Start(); err != nil {
		t.Fatalf("Start failed: %v", err)
	}

	cg, err := container.Cgroup()
	if err != nil || cg == nil {
		t.Fatalf("Cgroup() = %v, %v, want the container's cgroup", cg, err)
	}
	waitForProcs(t, cg, 3)

	// A Delete of the stopped container kills the child that outlived the main process.
	if err := container.Signal(syscall.SIGKILL, false); err != nil {
		t.Fatalf("Signal failed: %v", err)
	}
	_, _ = syscall.Wait4(container.Pid, nil, 0, nil)
	if err := container.Delete(false); err != nil {
		t.Fatalf("Delete failed: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(memoryLimitFile(path)) + "/" + filepath.Base(path)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cgroup %s still exists after Delete: %v", path, err)
	}
}

// removeTestCgroup removes the parent cgroup the test made, in every hierarchy.
func removeTestCgroup(t *testing.T, path string) {
	cg, err := LoadCgroup(path)
	if err != nil {
		t.Errorf("failed to load cgroup %s for removal: %v", path, err)
		return
	}
	if err := cg.Delete(); err != nil {
		t.Errorf("failed to remove cgroup %s: %v", path, err)
	}
}

// waitForProcs waits until cg holds want processes: the shell and its two sleeps.
func waitForProcs(t *testing.T, cg Cgroup, want int) {
	t.Helper()
	var pids []int
	for range 200 {
		var err error
		pids, err = cg.Procs()
		if err != nil {
			t.Fatalf("Procs failed: %v", err)
		}
		if len(pids) == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("cgroup holds pids %v, want %d processes", pids, want)
}
