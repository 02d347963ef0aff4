package installer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDetectCgroupDriver(t *testing.T) {
	runcSystemd := "version = 2\n[plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes.runc.options]\nSystemdCgroup = true\n"
	tests := []struct {
		name          string
		criDriver     string
		kubeletArgs   []string
		kubeletConfig string // at /etc/kubernetes/kubelet.yaml
		defaultConfig string // at DefaultKubeletConfig
		containerd    string
		want          string
		wantSource    string
		wantErr       string
	}{
		{name: "CRI wins", criDriver: "systemd", kubeletArgs: []string{"kubelet", "--cgroup-driver=cgroupfs"}, want: "systemd", wantSource: "CRI RuntimeConfig"},
		{name: "kubelet flag", kubeletArgs: []string{"kubelet", "--cgroup-driver", "systemd"}, want: "systemd", wantSource: "--cgroup-driver"},
		{name: "kubelet --config", kubeletArgs: []string{"kubelet", "--config=/etc/kubernetes/kubelet.yaml"},
			kubeletConfig: "kind: KubeletConfiguration\ncgroupDriver: systemd\n", want: "systemd", wantSource: "/etc/kubernetes/kubelet.yaml"},
		{name: "kubeadm config", defaultConfig: "cgroupDriver: cgroupfs\n", containerd: runcSystemd, want: "cgroupfs", wantSource: DefaultKubeletConfig},
		{name: "runc option", containerd: runcSystemd, want: "systemd", wantSource: "SystemdCgroup option of the runc handler"},
		{name: "default", containerd: "version = 2\n", want: "cgroupfs", wantSource: "default"},
		{name: "bad value", kubeletArgs: []string{"kubelet", "--cgroup-driver=systemdd"}, wantErr: `"systemdd"`},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, proc := t.TempDir(), t.TempDir()
			if tt.kubeletArgs != nil {
				writeFile(t, filepath.Join(proc, "42", "comm"), "kubelet\n")
				writeFile(t, filepath.Join(proc, "42", "cmdline"), strings.Join(tt.kubeletArgs, "\x00")+"\x00")
			}
			if tt.kubeletConfig != "" {
				writeFile(t, filepath.Join(root, "etc/kubernetes/kubelet.yaml"), tt.kubeletConfig)
			}
			if tt.defaultConfig != "" {
				writeFile(t, filepath.Join(root, DefaultKubeletConfig), tt.defaultConfig)
			}
			var cfg *ContainerdConfig
			if tt.containerd != "" {
				path := filepath.Join(root, "etc/containerd/config.toml")
				writeFile(t, path, tt.containerd)
				var err error
				if cfg, err = ReadContainerdConfig(path); err != nil {
					t.Fatal(err)
				}
			}

			got, err := DetectCgroupDriver(Options{HostRoot: root}, proc, tt.criDriver, cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DetectCgroupDriver() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Driver != tt.want || !strings.Contains(got.Source, tt.wantSource) {
				t.Errorf("DetectCgroupDriver() = %+v, %v; want %s from a source naming %q", got, err, tt.want, tt.wantSource)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
