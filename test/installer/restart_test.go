package installer

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"reaper.dev/reaper/test/internal/privatecontainerd"
)

// rejecting stands for a containerd that does not start with Reaper's drop-in.
const rejecting = `#!/bin/sh
if [ -e "$DIR/conf.d/reaper.toml" ]; then
  echo 'containerd: failed to load TOML from $DIR/conf.d/reaper.toml: reaper rejected by this containerd' >&2
  exit 1
fi
exec "$REAL_CONTAINERD" "$@"
`

// TestSignalRestart installs with --restart signal on a supervised private containerd and
// checks that containerd serves the handlers, that a second install does not restart it,
// and that uninstall takes them away again.
func TestSignalRestart(t *testing.T) {
	node := startSupervised(t, containerdBinary(t))
	original := readFile(t, node.config)

	// An install that wrote the config but ended before its restart, like one killed
	// there, leaves containerd without the handlers; the next install restarts it.
	if out, err := node.command("install", "--restart", "none").CombinedOutput(); err != nil {
		t.Fatalf("install --restart none failed: %v\n%s", err, out)
	}
	if served := node.served(t); slices.Contains(served, "reaper") {
		t.Fatalf("containerd serves reaper before any restart (it serves %q)", served)
	}

	firstPid := node.pid(t)
	node.run(t, "install")
	if node.pid(t) == firstPid {
		t.Errorf("containerd still runs as pid %s after an install that changed its config", firstPid)
	}
	for _, handler := range reaperHandlers {
		if !slices.Contains(node.served(t), handler) {
			t.Errorf("containerd does not serve %s after the install (it serves %q)", handler, node.served(t))
		}
	}

	secondPid := node.pid(t)
	node.run(t, "install")
	if node.pid(t) != secondPid {
		t.Error("a second install with nothing to change restarted containerd")
	}

	// An uninstall that removed the config but ended before its restart; the next one
	// restarts containerd although it has nothing left to remove.
	if out, err := node.command("uninstall", "--restart", "none").CombinedOutput(); err != nil {
		t.Fatalf("uninstall --restart none failed: %v\n%s", err, out)
	}
	node.run(t, "uninstall")
	if served := node.served(t); slices.Contains(served, "reaper") {
		t.Errorf("containerd still serves reaper after the uninstall (it serves %q)", served)
	}
	if got := readFile(t, node.config); got != original {
		t.Errorf("uninstall left the config\n%s\nwant\n%s", got, original)
	}
}

// TestSignalRestartRollback installs on a containerd that does not start with Reaper's
// drop-in: the installer restores the config, restarts containerd again, and fails with
// containerd's own error text.
func TestSignalRestartRollback(t *testing.T) {
	wrapper := filepath.Join(t.TempDir(), "containerd")
	if err := os.WriteFile(wrapper, []byte(rejecting), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REAL_CONTAINERD", containerdBinary(t))
	node := startSupervised(t, wrapper)
	node.timeout = "5s"
	original := readFile(t, node.config)

	out, err := node.command("install").CombinedOutput()
	t.Logf("reaper-installer install:\n%s", out)
	if err == nil {
		t.Fatalf("install succeeded although containerd rejects the drop-in:\n%s", out)
	}
	for _, want := range []string{"previous config files are back", "reaper rejected by this containerd"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the install's error does not contain %q:\n%s", want, out)
		}
	}

	if got := readFile(t, node.config); got != original {
		t.Errorf("the config after the rollback is\n%s\nwant\n%s", got, original)
	}
	if _, err := os.Stat(filepath.Join(node.dir, "conf.d/reaper.toml")); !os.IsNotExist(err) {
		t.Errorf("the drop-in is still there after the rollback (%v)", err)
	}
	if served := node.served(t); !slices.Contains(served, "runc") {
		t.Errorf("containerd does not serve runc after the rollback (it serves %q)", served)
	}
}

// supervisedNode is a private containerd under a supervisor loop, with its own paths.
type supervisedNode struct {
	dir    string
	config string
	binary string
	// timeout is the installer's --restart-timeout.
	timeout string
}

func containerdBinary(t *testing.T) string {
	t.Helper()
	return privatecontainerd.BinaryFromEnv(t, "INSTALLER_CONTAINERD", "hack/installer-cases.sh")
}

func startSupervised(t *testing.T, containerd string) *supervisedNode {
	t.Helper()
	dir, err := os.MkdirTemp("", "rpri.")
	if err != nil {
		t.Fatal(err)
	}
	node := &supervisedNode{dir: dir, config: filepath.Join(dir, privatecontainerd.ConfigFile), binary: buildInstaller(t), timeout: "20s"}
	if err := os.WriteFile(node.config, []byte(privatecontainerd.Config(dir)), 0o644); err != nil {
		t.Fatal(err)
	}

	supervisor, err := privatecontainerd.Start(dir, containerd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.stop(t, supervisor) })

	node.waitServed(t, "runc")
	return node
}

func (n *supervisedNode) stop(t *testing.T, supervisor *privatecontainerd.Supervisor) {
	if err := supervisor.Stop(); err != nil {
		t.Error(err)
	}
	_ = os.RemoveAll(n.dir)
}

// command returns the installer command that installs into the node, restarting its
// containerd through the supervisor.
func (n *supervisedNode) command(action string, extra ...string) *exec.Cmd {
	args := []string{action, "--restart", "signal",
		"--containerd-config", n.config, "--containerd-socket", filepath.Join(n.dir, privatecontainerd.Socket),
		"--containerd-pid-file", filepath.Join(n.dir, privatecontainerd.PIDFile), "--containerd-log", filepath.Join(n.dir, privatecontainerd.LogFile),
		"--install-dir", filepath.Join(n.dir, "reaper"), "--link-dir", "", "--lock-file", filepath.Join(n.dir, "installer.lock"),
		"--restart-timeout", n.timeout}
	if action == "install" {
		args = append(args, "--source-dir", filepath.Dir(n.binary))
	}
	return exec.Command(n.binary, append(args, extra...)...)
}

func (n *supervisedNode) run(t *testing.T, action string) {
	t.Helper()
	if out, err := n.command(action).CombinedOutput(); err != nil {
		t.Fatalf("reaper-installer %s failed: %v\n%s", action, err, out)
	}
}

func (n *supervisedNode) pid(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(readFile(t, filepath.Join(n.dir, privatecontainerd.PIDFile)))
}

func (n *supervisedNode) served(t *testing.T) []string {
	t.Helper()
	served, err := privatecontainerd.Handlers(filepath.Join(n.dir, privatecontainerd.Socket))
	if err != nil {
		t.Fatal(err)
	}
	return served
}

func (n *supervisedNode) waitServed(t *testing.T, handler string) {
	t.Helper()
	var lastErr error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		served, err := privatecontainerd.Handlers(filepath.Join(n.dir, privatecontainerd.Socket))
		if err == nil && slices.Contains(served, handler) {
			return
		}
		lastErr = err
	}
	t.Fatalf("the supervised containerd does not serve %s after 20s (%v); its log:\n%s", handler, lastErr, readFile(t, filepath.Join(n.dir, privatecontainerd.LogFile)))
}

// buildInstaller builds reaper-installer, with stand-ins for the binaries it installs
// beside it; the test never runs them.
func buildInstaller(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	binary := filepath.Join(dir, "reaper-installer")
	build := exec.Command("go", "build", "-o", binary, "reaper.dev/reaper/cmd/reaper-installer")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of reaper-installer failed: %v\n%s", err, out)
	}
	for _, name := range []string{"containerd-shim-reaper-v2", "reaper-runtime", "reaper-init"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return binary
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
