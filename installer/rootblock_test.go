package installer

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A version 2 config in the style of containerd 1.6 and 1.7 nodes: comments, the systemd
// cgroup driver for runc, and a CRI section that a drop-in would replace on containerd 1.x.
const version2Config = `# Managed by the site's provisioning; keep the CRI settings below.
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"

  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = true # matches the kubelet
`

func installVersion2(t *testing.T, config string) (testHost, []byte) {
	t.Helper()
	host := newTestHost(t, config)
	plan, err := PlanInstall(host.opts)
	if err != nil {
		t.Fatalf("PlanInstall() error: %v", err)
	}
	if _, err := plan.Apply(discardLogger()); err != nil {
		t.Fatalf("Apply() error: %v", err)
	}

	data, err := os.ReadFile(host.configPath)
	if err != nil {
		t.Fatal(err)
	}
	return host, data
}

func TestInstallVersion2AppendsToRoot(t *testing.T) {
	host, data := installVersion2(t, version2Config)

	if !bytes.HasPrefix(data, []byte(version2Config)) {
		t.Errorf("the original bytes are not kept as the start of the file:\n%s", data)
	}
	_, table := runtimes(t, host.configPath, "io.containerd.grpc.v1.cri")
	if _, ok := table["runc"]; !ok {
		t.Errorf("runtimes.runc is missing after the install: %v", table)
	}
	want := "map[runtime_path:" + filepath.Join(host.opts.InstallDir, ShimBinary) + " runtime_type:" + RuntimeType + "]"
	if got := fmt.Sprint(table[DefaultHandler]); got != want {
		t.Errorf("runtimes.reaper = %s, want %s", got, want)
	}
	assertNotExist(t, host.dropInDir)
	assertContent(t, host.configPath+".reaper-backup", []byte(version2Config))
	assertMode(t, host.configPath, 0o644)
}

func TestInstallVersion2Twice(t *testing.T) {
	host, first := installVersion2(t, version2Config)

	plan, err := PlanInstall(host.opts)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := plan.Apply(discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if changed {
		t.Error("a second install reported a change")
	}
	assertContent(t, host.configPath, first)
}

func TestUninstallVersion2RestoresBytes(t *testing.T) {
	cases := []struct {
		name   string
		config string
	}{
		{name: "LF", config: version2Config},
		{name: "CRLF", config: strings.ReplaceAll(version2Config, "\n", "\r\n")},
		{name: "no final newline", config: strings.TrimSuffix(version2Config, "\n")},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			host, installed := installVersion2(t, tc.config)
			if tc.name == "CRLF" && bytes.Contains(bytes.ReplaceAll(installed, []byte("\r\n"), nil), []byte("\n")) {
				t.Errorf("the block uses LF line ends in a CRLF file:\n%q", installed)
			}

			plan, err := PlanUninstall(host.opts)
			if err != nil {
				t.Fatalf("PlanUninstall() error: %v", err)
			}
			if _, err := plan.Apply(discardLogger()); err != nil {
				t.Fatalf("Apply() error: %v", err)
			}
			assertContent(t, host.configPath, []byte(tc.config))
		})
	}
}

func TestInstallVersion2ForeignHandler(t *testing.T) {
	config := version2Config + `
  # Added by hand, following older docs.
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.reaper]
    runtime_type = "io.containerd.runc.v2"
`
	host := newTestHost(t, config)

	_, err := PlanInstall(host.opts)
	if !errors.Is(err, ErrForeignHandler) {
		t.Fatalf("PlanInstall() error = %v, want ErrForeignHandler", err)
	}
	if !strings.Contains(err.Error(), "runtimes.reaper") {
		t.Errorf("error %q does not name the table", err)
	}
	assertContent(t, host.configPath, []byte(config))
}

func TestInstallVersion2InlineRuntimes(t *testing.T) {
	config := "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  runtimes = { runc = { runtime_type = \"io.containerd.runc.v2\" } }\n"
	host := newTestHost(t, config)

	_, err := PlanInstall(host.opts)
	if err == nil || !strings.Contains(err.Error(), "inline table") {
		t.Fatalf("PlanInstall() error = %v, want one that explains the inline table", err)
	}
	assertContent(t, host.configPath, []byte(config))
}
