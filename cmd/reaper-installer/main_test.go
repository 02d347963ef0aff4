package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"reaper.dev/reaper/installer"
)

// runCommand runs the installer command line with args, a lock file of the test's own and
// no restart, and returns its standard output and error.
func runCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if len(args) > 0 && (args[0] == "install" || args[0] == "uninstall") {
		args = append(args, "--lock-file", filepath.Join(t.TempDir(), "installer.lock"))
		if !slices.Contains(args, "--restart") {
			args = append(args, "--restart", "none")
		}
	}
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&bytes.Buffer{})
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func newHost(t *testing.T) (config, installDir, sourceDir string) {
	t.Helper()
	dir := t.TempDir()
	config = filepath.Join(dir, "config.toml")
	sourceDir = filepath.Join(dir, "build")
	if err := os.MkdirAll(sourceDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range installer.Binaries {
		if err := os.WriteFile(filepath.Join(sourceDir, name), []byte(name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(config, []byte("version = 3\nimports = [\"conf.d/*.toml\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return config, filepath.Join(dir, "opt"), sourceDir
}

func TestInstallDryRunWritesNothing(t *testing.T) {
	config, installDir, sourceDir := newHost(t)
	out, err := runCommand(t, "install", "--dry-run", "--containerd-config", config,
		"--install-dir", installDir, "--source-dir", sourceDir)
	if err != nil {
		t.Fatalf("install --dry-run error: %v", err)
	}

	// Both handlers by default, the protected one with the option that selects its mode.
	for _, want := range []string{"runtimes.reaper]", "runtimes.reaper-protected]", "runtimes.reaper-protected.options]\n+Protected = true", "copy " + sourceDir} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not contain %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(installDir); !os.IsNotExist(err) {
		t.Errorf("dry run created %s", installDir)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(config), "conf.d")); !os.IsNotExist(err) {
		t.Error("dry run created the drop-in directory")
	}
}

func TestInstallThenUninstall(t *testing.T) {
	config, installDir, sourceDir := newHost(t)
	dropIn := filepath.Join(filepath.Dir(config), "conf.d", "reaper.toml")
	linkDir := t.TempDir()
	link := filepath.Join(linkDir, installer.ShimBinary)

	if _, err := runCommand(t, "install", "--containerd-config", config, "--install-dir", installDir,
		"--source-dir", sourceDir, "--link-dir", linkDir); err != nil {
		t.Fatalf("install error: %v", err)
	}
	if _, err := os.Stat(dropIn); err != nil {
		t.Fatalf("install wrote no drop-in: %v", err)
	}
	if target, err := os.Readlink(link); err != nil || target != filepath.Join(installDir, installer.ShimBinary) {
		t.Errorf("link %s points to %q (%v), want the installed shim", link, target, err)
	}

	if _, err := runCommand(t, "uninstall", "--containerd-config", config, "--install-dir", installDir, "--link-dir", linkDir); err != nil {
		t.Fatalf("uninstall error: %v", err)
	}
	if _, err := os.Stat(dropIn); !os.IsNotExist(err) {
		t.Errorf("uninstall left %s", dropIn)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Errorf("uninstall left the link %s", link)
	}
}

// TestRestartMethods checks that a restart method that cannot run fails before anything
// is written. The host is a temporary folder given as --host-root, so that no method can
// reach the machine's own systemd or containerd.
func TestRestartMethods(t *testing.T) {
	config, installDir, sourceDir := newHost(t)
	hostRoot := filepath.Dir(config)
	tests := map[string]string{
		"systemd": "connect to systemd at " + filepath.Join(hostRoot, "run/systemd/private"),
		"auto":    "--restart auto found no systemd",
		"signal":  "needs --containerd-pid-file",
		"sighup":  "invalid restart method",
	}
	for method, want := range tests {
		for _, command := range []string{"install", "uninstall"} {
			args := []string{command, "--restart", method, "--host-root", hostRoot, "--containerd-config", "/config.toml",
				"--install-dir", "/opt", "--link-dir", ""}
			if command == "install" {
				args = append(args, "--source-dir", sourceDir)
			}
			_, err := runCommand(t, args...)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s --restart %s error = %v, want one containing %q", command, method, err, want)
			}
		}
	}
	if _, err := os.Stat(installDir); !os.IsNotExist(err) {
		t.Errorf("a restart method that cannot run still installed into %s", installDir)
	}
}

func TestInstallRejectsProtectedRoot(t *testing.T) {
	config, installDir, sourceDir := newHost(t)
	tests := map[string][]string{
		`invalid --protected-root "bogus": use overlay or read-only`:           {"--protected-root", "bogus"},
		"--protected-root read-only has no effect without a protected handler": {"--protected-handler", "", "--protected-root", "read-only"},
	}

	for want, flags := range tests {
		args := append([]string{"install", "--dry-run", "--containerd-config", config, "--install-dir", installDir, "--source-dir", sourceDir}, flags...)
		if _, err := runCommand(t, args...); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("install %v: error = %v, want one containing %q", flags, err, want)
		}
	}
}

// TestInstallDetectsK3s installs into a k3s node without --containerd-config: the installer
// finds k3s's rendered config, leaves it alone, and writes the template k3s renders it from.
func TestInstallDetectsK3s(t *testing.T) {
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS("../../installer/testdata/cases/c05b-k3s-no-dropin-dir")); err != nil {
		t.Fatal(err)
	}
	_, _, sourceDir := newHost(t)
	dir := filepath.Join(root, "var/lib/rancher/k3s/agent/etc/containerd")
	rendered, err := os.ReadFile(filepath.Join(dir, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}

	if _, err := runCommand(t, "install", "--host-root", root, "--source-dir", sourceDir, "--link-dir", ""); err != nil {
		t.Fatalf("install on k3s: %v", err)
	}
	template, err := os.ReadFile(filepath.Join(dir, "config-v3.toml.tmpl"))
	if err != nil || !strings.Contains(string(template), `{{ template "base" . }}`) || !strings.Contains(string(template), "runtimes.reaper]") {
		t.Errorf("the k3s template is %q (%v), want the base include and the reaper handler", template, err)
	}
	if now, err := os.ReadFile(filepath.Join(dir, "config.toml")); err != nil || string(now) != string(rendered) {
		t.Errorf("the install changed k3s's rendered config (%v)", err)
	}

	if _, err := runCommand(t, "uninstall", "--host-root", root, "--link-dir", ""); err != nil {
		t.Fatalf("uninstall on k3s: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "config-v3.toml.tmpl")); !os.IsNotExist(err) {
		t.Errorf("uninstall left the template it wrote (%v)", err)
	}
}

// TestStatusOfDistros checks what status finds on k0s and microk8s nodes: the distribution,
// its drop-in folder or template, and its socket, not a templated [grpc] address.
func TestStatusOfDistros(t *testing.T) {
	tests := map[string]struct{ distro, socket, dropIn string }{
		"c12-k0s-containerd-d":  {"k0s", "/run/k0s/containerd.sock", "/etc/k0s/containerd.d/reaper.toml"},
		"c13-microk8s-template": {"microk8s", "/var/snap/microk8s/common/run/containerd.sock", ""},
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.CopyFS(root, os.DirFS("../../installer/testdata/cases/"+name)); err != nil {
				t.Fatal(err)
			}
			_, _, sourceDir := newHost(t)
			if _, err := runCommand(t, "install", "--host-root", root, "--source-dir", sourceDir, "--link-dir", ""); err != nil {
				t.Fatalf("install: %v", err)
			}

			out, err := runCommand(t, "status", "--host-root", root, "--link-dir", "", "-o", "json")
			if err != nil {
				t.Fatalf("status: %v", err)
			}
			var status struct {
				Distro      string   `json:"distro"`
				DropIn      string   `json:"dropIn"`
				RootBlock   bool     `json:"rootBlock"`
				Handlers    []string `json:"handlers"`
				ServedError string   `json:"servedError"`
			}
			if err := json.Unmarshal([]byte(out), &status); err != nil {
				t.Fatalf("status -o json: %v\n%s", err, out)
			}
			if status.Distro != want.distro || !strings.Contains(status.ServedError, filepath.Join(root, want.socket)) {
				t.Errorf("status found %s with the socket error %q, want %s at %s", status.Distro, status.ServedError, want.distro, want.socket)
			}
			if want.dropIn != "" && status.DropIn != filepath.Join(root, want.dropIn) {
				t.Errorf("status reports the drop-in %q, want %s", status.DropIn, want.dropIn)
			}
			if want.dropIn == "" && !status.RootBlock {
				t.Error("status reports no handler block in the template")
			}
			if !slices.Contains(status.Handlers, "reaper") {
				t.Errorf("status reports the handlers %q, want reaper among them", status.Handlers)
			}
		})
	}
}
