package agent

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
	"reaper.dev/reaper/installer"
	"reaper.dev/reaper/installer/agent"
)

// TestHostRootFixtures runs the agent with a host root, as in a pod that mounts the
// host's / at /host, on node configs from the installer's cases. No containerd runs
// there, so the agent restarts nothing and cannot reach the CRI. The agent must find the
// distribution, report host paths, write below the host root only, and leave every file
// as it was after the deletion.
func TestHostRootFixtures(t *testing.T) {
	cases := []struct {
		name       string
		source     string
		target     string
		flavor     reaperv1alpha1.ContainerdFlavor
		configPath string
		dropInPath string
		// driver is the cgroup driver of the case's runc handler, or the kubelet's
		// default cgroupfs.
		driver reaperv1alpha1.CgroupDriver
	}{
		{"plain-confd", "c02-v3-imports-confd", "etc/containerd", reaperv1alpha1.FlavorPlain,
			"/etc/containerd/config.toml", "/etc/containerd/conf.d/reaper.toml", reaperv1alpha1.CgroupDriverSystemd},
		{"k0s", "c12-k0s-containerd-d", "", reaperv1alpha1.FlavorK0s,
			"/etc/k0s/containerd.toml", "/etc/k0s/containerd.d/reaper.toml", reaperv1alpha1.CgroupDriverCgroupfs},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			copyTree(t, filepath.Join("..", "..", "installer", "testdata", "cases", c.source), filepath.Join(root, c.target))
			before := readTree(t, root)
			opts := hostRootOptions(t, c.name, root)
			createNode(t, c.name, reaperv1alpha1.ReaperNodeSpec{})
			runAgent(t, opts)

			node := waitForPhase(t, c.name, reaperv1alpha1.PhaseDegraded, 20*time.Second)
			s := node.Status.Containerd
			if s.Flavor != c.flavor {
				t.Errorf("containerd.flavor is %q, want %q", s.Flavor, c.flavor)
			}
			if s.ConfigPath != c.configPath {
				t.Errorf("containerd.configPath is %q, want the host path %q", s.ConfigPath, c.configPath)
			}
			if s.DropInPath != c.dropInPath {
				t.Errorf("containerd.dropInPath is %q, want the host path %q", s.DropInPath, c.dropInPath)
			}
			if s.CgroupDriver != c.driver {
				t.Errorf("containerd.cgroupDriver is %q, want %q", s.CgroupDriver, c.driver)
			}
			if _, err := os.Stat(filepath.Join(root, c.dropInPath)); err != nil {
				t.Errorf("the drop-in is not below the host root: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(root, "usr/local/bin", installer.ShimBinary)); err != nil {
				t.Errorf("the shim link is not below the host root: %v", err)
			}
			if registered := condition(t, node, reaperv1alpha1.ConditionHandlerRegistered); registered.Reason != reaperv1alpha1.ReasonCRIUnavailable {
				t.Errorf("HandlerRegistered has reason %s, want CRIUnavailable: %s", registered.Reason, registered.Message)
			}
			if binaries := condition(t, node, reaperv1alpha1.ConditionBinariesInstalled); !strings.Contains(binaries.Message, "/opt/reaper/bin") {
				t.Errorf("the BinariesInstalled message does not name the host path /opt/reaper/bin: %s", binaries.Message)
			}

			deleteNode(t, c.name)
			waitForPhase(t, c.name, reaperv1alpha1.PhaseUninstalling, 20*time.Second)
			setControllerReadyFalse(t, c.name)
			waitUntilGone(t, c.name, 20*time.Second)
			after := readTree(t, root)
			// The lock file stays: removing it could let two installers lock different files.
			for _, path := range []string{"run/", "run/reaper/", "run/reaper/installer.lock"} {
				delete(after, path)
			}
			for path, content := range before {
				if after[path] != content {
					t.Errorf("%s after the uninstall is\n%s\nwant\n%s", path, after[path], content)
				}
			}
			for path := range after {
				if _, ok := before[path]; !ok {
					t.Errorf("the uninstall left %s", path)
				}
			}
		})
	}
}

// hostRootOptions returns the agent options of a host below root, found with the
// defaults of the DaemonSet's agent apart from the restart method none.
func hostRootOptions(t *testing.T, name, root string) agent.Options {
	t.Helper()
	h := &host{dir: root, sourceDir: filepath.Join(t.TempDir(), "build")}
	if err := os.MkdirAll(h.sourceDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, binary := range installer.Binaries {
		if err := os.WriteFile(filepath.Join(h.sourceDir, binary), []byte(binary), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	opts := h.options(name)
	opts.Host = installer.HostConfig{
		HostRoot:      root,
		Distro:        installer.DistroAuto,
		InstallDir:    installer.DefaultInstallDir,
		LinkDir:       installer.DefaultLinkDir,
		CgroupDriver:  installer.CgroupDriverAuto,
		LockFile:      installer.DefaultLockFile,
		RestartMethod: string(installer.RestartNone),
		// An empty /proc: no containerd or kubelet of this machine is the node's.
		ProcDir: t.TempDir(),
	}
	return opts
}

// copyTree copies the regular files below source to target.
func copyTree(t *testing.T, source, target string) {
	t.Helper()
	err := filepath.WalkDir(source, func(path string, entry fs.DirEntry, err error) error {
		if err != nil || entry.IsDir() {
			return err
		}
		rel, err := filepath.Rel(source, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dest := filepath.Join(target, rel)
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dest, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", source, target, err)
	}
}

// readTree returns the content of every file and link below root by relative path, and
// an empty string for each folder.
func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	err := filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		switch {
		case entry.IsDir():
			tree[rel+"/"] = ""
		case entry.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			tree[rel] = "link to " + target
			return err
		default:
			data, err := os.ReadFile(path)
			tree[rel] = string(data)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the tree %s: %v", root, err)
	}
	return tree
}

// TestUninstallWaitTimesOut deletes a ReaperNode whose controller never sets Ready to
// False, and checks that the agent reverts the node once --uninstall-wait has passed.
func TestUninstallWaitTimesOut(t *testing.T) {
	const name = "uninstall-wait"
	root := t.TempDir()
	copyTree(t, filepath.Join("..", "..", "installer", "testdata", "cases", "c02-v3-imports-confd"), filepath.Join(root, "etc/containerd"))
	config := filepath.Join(root, "etc/containerd/config.toml")
	original := readFile(t, config)
	opts := hostRootOptions(t, name, root)
	opts.UninstallWait = 3 * time.Second
	createNode(t, name, reaperv1alpha1.ReaperNodeSpec{})
	runAgent(t, opts)
	waitForPhase(t, name, reaperv1alpha1.PhaseDegraded, 20*time.Second)

	deleteNode(t, name)
	node := waitForPhase(t, name, reaperv1alpha1.PhaseUninstalling, 20*time.Second)
	if _, err := os.Stat(filepath.Join(root, "opt/reaper/bin", installer.ShimBinary)); err != nil {
		t.Errorf("the agent removed the shim before the wait was over: %v", err)
	}
	waitUntilGone(t, name, 20*time.Second)
	if waited := time.Since(node.DeletionTimestamp.Time); waited < opts.UninstallWait {
		t.Errorf("the agent reverted the node %s after the deletion, before --uninstall-wait %s", waited, opts.UninstallWait)
	}
	if got := readFile(t, config); got != original {
		t.Errorf("containerd's config after the uninstall is\n%s\nwant\n%s", got, original)
	}
	waitForEvent(t, name, agent.EventUninstallWaitTimedOut)
}
