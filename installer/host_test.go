package installer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveHostRejectsInvalidConfig(t *testing.T) {
	root := t.TempDir()
	cases := map[string]HostConfig{
		"relative host root": {HostRoot: "host"},
		"missing host root":  {HostRoot: filepath.Join(root, "missing")},
		"relative link dir":  {HostRoot: root, LinkDir: "usr/local/bin"},
		"unknown restart":    {HostRoot: root, RestartMethod: "reboot"},
		"unknown distro":     {HostRoot: root, Distro: "minikube"},
	}
	for name, config := range cases {
		if _, err := ResolveHost(config); err == nil {
			t.Errorf("%s: ResolveHost accepted %+v", name, config)
		}
	}
}

func TestResolveHostFromDistro(t *testing.T) {
	root := t.TempDir()
	config := filepath.Join(root, "var/lib/rancher/k3s/agent/etc/containerd/config.toml")
	if err := os.MkdirAll(filepath.Dir(config), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, []byte("version = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	host, err := ResolveHost(HostConfig{HostRoot: root, Distro: DistroAuto, ProcDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if host.Distro.Name != "k3s" {
		t.Errorf("the detected distribution is %s, want k3s", host.Distro.Name)
	}
	if got := host.Config.ContainerdSocket; got != "/run/k3s/containerd/containerd.sock" {
		t.Errorf("the socket is %s, want k3s's", got)
	}
	if got := host.Config.SystemdUnit; got != "k3s.service" {
		t.Errorf("the unit is %s, want k3s.service", got)
	}
	if got := host.Config.RestartTimeout; got != DefaultRestartTimeout {
		t.Errorf("the restart timeout is %s, want the default %s", got, DefaultRestartTimeout)
	}
	if opts := host.Options(); opts.Templates[3] == "" {
		t.Errorf("the options of k3s's own config have no version 3 template: %+v", opts.Templates)
	}
}

func TestResolveHostSocketFromConfig(t *testing.T) {
	root := t.TempDir()
	config := filepath.Join(root, "etc/containerd/config.toml")
	if err := os.MkdirAll(filepath.Dir(config), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, []byte("version = 3\n[grpc]\n  address = \"/run/other/containerd.sock\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	host, err := ResolveHost(HostConfig{HostRoot: root, Distro: "containerd"})
	if err != nil {
		t.Fatal(err)
	}
	if got := host.Config.ContainerdSocket; got != "/run/other/containerd.sock" {
		t.Errorf("the socket is %s, want the address of the root config", got)
	}
}

func TestDetectRejectsUnknownCgroupDriver(t *testing.T) {
	host, err := ResolveHost(HostConfig{HostRoot: t.TempDir(), Distro: "containerd", CgroupDriver: "cgroupv3"})
	if err != nil {
		t.Fatal(err)
	}
	opts := host.Options()
	if err := host.Detect(context.Background(), &opts); err == nil || !strings.Contains(err.Error(), "cgroupv3") {
		t.Errorf("Detect returned %v, want an error that names cgroupv3", err)
	}
	if host.ContainerdErr == nil {
		t.Error("Detect reached a containerd where none runs")
	}
}

func TestPlanPendingUntilApplied(t *testing.T) {
	host := newTestHost(t, "version = 3\nimports = [\"conf.d/*.toml\"]\n")
	plan, err := PlanInstall(host.opts)
	if err != nil {
		t.Fatal(err)
	}
	if pending, err := plan.Pending(); err != nil || !pending {
		t.Fatalf("Pending before the install = %t, %v; want true", pending, err)
	}
	if _, err := plan.Apply(discardLogger()); err != nil {
		t.Fatal(err)
	}

	plan, err = PlanInstall(host.opts)
	if err != nil {
		t.Fatal(err)
	}
	if pending, err := plan.Pending(); err != nil || pending {
		t.Errorf("Pending after the install = %t, %v; want false", pending, err)
	}

	if err := os.Remove(filepath.Join(host.dropInDir, DropInName)); err != nil {
		t.Fatal(err)
	}
	if pending, err := plan.Pending(); err != nil || !pending {
		t.Errorf("Pending without the drop-in = %t, %v; want true", pending, err)
	}
}

func TestStatusSeparatesBinaryDrift(t *testing.T) {
	host := newTestHost(t, "version = 3\nimports = [\"conf.d/*.toml\"]\n")
	plan, err := PlanInstall(host.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Apply(discardLogger()); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(host.opts.InstallDir, RuntimeBinary)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(host.dropInDir, DropInName)); err != nil {
		t.Fatal(err)
	}

	status, err := ReadStatus(host.opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(status.BinaryDrift) != 1 || !strings.Contains(status.BinaryDrift[0], RuntimeBinary) {
		t.Errorf("the binary drift is %q, want the missing %s only", status.BinaryDrift, RuntimeBinary)
	}
	if len(status.Drift) <= len(status.BinaryDrift) {
		t.Errorf("the drift %q lacks the missing drop-in", status.Drift)
	}
}

func TestInvalidConfigErrorMatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte("version = 3\n[plugins\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadContainerdConfig(path)
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("the error %v does not match ErrInvalidConfig", err)
	}
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("the error %v does not name the line", err)
	}
}

func TestAddCgroupDriverDrift(t *testing.T) {
	host := &Host{CgroupDriver: CgroupDriver{Driver: CgroupDriverSystemd, Source: "the test"}}
	status := &Status{HandlerCgroupDriver: CgroupDriverCgroupfs}
	host.AddCgroupDriverDrift(status)
	if len(status.Drift) != 1 || !strings.Contains(status.Drift[0], "the test") {
		t.Errorf("the drift is %q, want one entry that names the driver's source", status.Drift)
	}

	same := &Status{HandlerCgroupDriver: CgroupDriverSystemd}
	host.AddCgroupDriverDrift(same)
	if len(same.Drift) != 0 {
		t.Errorf("the drift is %q for handlers with the kubelet's driver, want none", same.Drift)
	}
}
