package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestMountNamespace checks that each container has a mount namespace of its own that is a
// slave of the host's. What it mounts stays inside, what the host mounts later shows
// inside, and an exec shows the container's mounts.
func TestMountNamespace(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "mountns", s.handler)
	inside := sharedDir(t)
	later := sharedMount(t)

	// Mounting needs CAP_SYS_ADMIN, which is not in the default capability set.
	script := `mount -t tmpfs reaper-e2e-inside "$1" && touch "$1/flag" && echo mounted && exec sleep 600`
	config := containerConfig("mounter", "/bin/sh", "-c", script, "sh", inside)
	config.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{
		Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"SYS_ADMIN"}},
	}
	c := s.runContainer(t, p, config)
	waitLogLine(t, c, "stdout", "mounted")

	t.Run("own namespace", func(t *testing.T) {
		pid := strconv.Itoa(s.containerPid(t, c))
		containerNS, err := namespaceOf(pid, "mnt")
		if err != nil {
			t.Fatal(err)
		}
		hostNS, err := namespaceOf("self", "mnt")
		if err != nil {
			t.Fatal(err)
		}
		if containerNS == hostNS {
			t.Errorf("the container's mount namespace %s is the host's", containerNS)
		}
	})

	t.Run("mount stays inside", func(t *testing.T) {
		if mounted(t, "self", inside) {
			t.Errorf("the tmpfs the container mounted at %s is visible on the host", inside)
		}
		if _, err := os.Stat(filepath.Join(inside, "flag")); !os.IsNotExist(err) {
			t.Errorf("the file the container wrote into its tmpfs is on the host's %s: %v", inside, err)
		}
	})

	t.Run("exec sees the container's mounts", func(t *testing.T) {
		resp := s.execSync(t, c, "/bin/ls", inside)
		if got := string(resp.GetStdout()); got != "flag\n" {
			t.Errorf("ls %s in an exec printed %q (stderr %q), expected the container's tmpfs with flag", inside, got, resp.GetStderr())
		}
	})

	t.Run("host mount propagates in", func(t *testing.T) {
		target := filepath.Join(later, "inner")
		if err := os.Mkdir(target, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("reaper-e2e-later", target, "tmpfs", 0, ""); err != nil {
			t.Fatalf("mount a tmpfs at %s on the host: %v", target, err)
		}
		t.Cleanup(func() { _ = unix.Unmount(target, unix.MNT_DETACH) })

		resp := s.execSync(t, c, "/bin/grep", "-c", " "+target+" ", "/proc/self/mountinfo")
		if got := strings.TrimSpace(string(resp.GetStdout())); got != "1" {
			t.Errorf("the container sees %q mounts at %s after the host mounted one there, expected 1", got, target)
		}
	})
}

// sharedMount returns a directory that is a shared mount point, so that mounts the host
// makes below it propagate to the slave copies in containers whatever the propagation of
// the host's root (a private root in some CI sandboxes).
func sharedMount(t *testing.T) string {
	t.Helper()
	dir := sharedDir(t)
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind-mount %s onto itself: %v", dir, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })

	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		t.Fatalf("make %s a shared mount: %v", dir, err)
	}
	return dir
}

// mounted reports whether the mount table of process pid (or "self") has a mount point at
// path.
func mounted(t *testing.T, pid, path string) bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", pid, "mountinfo"))
	if err != nil {
		t.Fatalf("read the mount table of %s: %v", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && fields[4] == path {
			return true
		}
	}
	return false
}
