package installer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunningConfig(t *testing.T) {
	proc := t.TempDir()
	process(t, proc, "1", "systemd", "/sbin/init")
	process(t, proc, "40", "containerd", "/usr/bin/containerd", "-c", "/var/lib/rancher/k3s/agent/etc/containerd/config.toml")
	process(t, proc, "41", "containerd-shim", "containerd-shim-runc-v2", "-namespace", "k8s.io")
	if got, want := RunningConfig(proc), "/var/lib/rancher/k3s/agent/etc/containerd/config.toml"; got != want {
		t.Errorf("RunningConfig() = %q, want %q", got, want)
	}

	process(t, proc, "50", "containerd", "/usr/bin/containerd", "--config=/etc/containerd/config.toml")
	if got := RunningConfig(proc); got != "" {
		t.Errorf("RunningConfig() with two containerds of different configs = %q, want none", got)
	}
}

func process(t *testing.T, proc, pid, comm string, args ...string) {
	t.Helper()
	dir := filepath.Join(proc, pid)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "comm"), []byte(comm+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cmdline"), []byte(strings.Join(args, "\x00")+"\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
}
