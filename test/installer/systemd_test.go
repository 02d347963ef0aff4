package installer

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"reaper.dev/reaper/test/internal/privatecontainerd"
)

// systemdInner starts systemd as PID 1 of the new PID namespace, on a cgroup2 mount of its
// own cgroup namespace and a tmpfs /run, so that it changes nothing of the host's cgroups
// or /run. Its only target starts containerd's unit.
const systemdInner = `set -e
mount -t cgroup2 reaper-systemd-test /sys/fs/cgroup
mount -t tmpfs -o mode=755 reaper-systemd-test /run
mkdir -p /run/systemd/system
cat >/run/systemd/system/reaper-test.target <<UNIT
[Unit]
Description=Reaper installer test
DefaultDependencies=no
Wants=$UNIT_NAME
UNIT
cat >/run/systemd/system/$UNIT_NAME <<UNIT
[Unit]
Description=containerd for the Reaper installer test
DefaultDependencies=no

[Service]
ExecStart=$CONTAINERD --config $DIR/config.toml
UNIT
exec env container=reaper-test /lib/systemd/systemd --system --log-target=console --unit=reaper-test.target
`

// systemdOuter moves itself into the test's cgroup, so that systemd's cgroup namespace
// starts there, and enters the new namespaces.
const systemdOuter = `echo $$ >"$CGROUP/cgroup.procs" &&
exec unshare --cgroup --pid --mount --fork --propagation private --mount-proc /bin/sh -c "$INNER"`

const testUnit = "containerd-reaper-test.service"

// TestSystemdRestart installs with --restart systemd against systemd 252 running as PID 1
// of a private PID namespace, with containerd as one of its units. The installer joins
// that PID namespace, as the installer pod shares the host's (hostPID), and reaches the
// host through --host-root /proc/PID/root.
func TestSystemdRestart(t *testing.T) {
	containerd := containerdBinary(t)
	if _, err := os.Stat("/lib/systemd/systemd"); err != nil {
		t.Fatalf("this test runs systemd as PID 1 of a new PID namespace, and /lib/systemd/systemd is missing (%v); install the Debian package systemd", err)
	}
	node := startSystemd(t, containerd)

	firstPid := node.mainPid(t)
	node.run(t, "install")
	if node.mainPid(t) == firstPid {
		t.Errorf("containerd still runs as pid %s after an install that changed its config", firstPid)
	}
	for _, handler := range reaperHandlers {
		if served := node.served(t); !slices.Contains(served, handler) {
			t.Errorf("containerd does not serve %s after the install (it serves %q)", handler, served)
		}
	}

	secondPid := node.mainPid(t)
	node.run(t, "install")
	if node.mainPid(t) != secondPid {
		t.Error("a second install with nothing to change restarted containerd")
	}

	node.run(t, "uninstall")
	if served := node.served(t); slices.Contains(served, "reaper") {
		t.Errorf("containerd still serves reaper after the uninstall (it serves %q)", served)
	}
}

// systemdNode is a systemd in private namespaces that runs a private containerd.
type systemdNode struct {
	supervisedNode
	pid1 int
}

func startSystemd(t *testing.T, containerd string) *systemdNode {
	t.Helper()
	dir, err := os.MkdirTemp("", "rprs.")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(privatecontainerd.Config(dir)), 0o644); err != nil {
		t.Fatal(err)
	}

	cgroup := testCgroup(t)
	cmd := exec.Command("/bin/sh", "-c", systemdOuter)
	cmd.Env = append(os.Environ(), "CGROUP="+cgroup, "INNER="+systemdInner, "DIR="+dir, "CONTAINERD="+containerd, "UNIT_NAME="+testUnit)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	node := &systemdNode{supervisedNode: supervisedNode{dir: dir, config: filepath.Join(dir, "config.toml"), binary: buildInstaller(t), timeout: "30s"}}
	t.Cleanup(func() {
		if node.pid1 != 0 {
			_ = syscall.Kill(node.pid1, syscall.SIGKILL)
		}
		_ = cmd.Wait()
		removeCgroup(t, cgroup)
	})

	node.pid1 = waitSystemd(t, cgroup)
	node.waitServed(t, "runc")
	return node
}

// testCgroup makes a cgroup2 folder for the test's systemd below the test's own cgroup.
func testCgroup(t *testing.T) string {
	t.Helper()
	mount, own := cgroup2(t)
	path := filepath.Join(mount, own, "reaper-systemd-test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatalf("create the cgroup of the test's systemd: %v", err)
	}
	return path
}

// cgroup2 returns where the cgroup2 hierarchy is mounted and the process's cgroup in it.
func cgroup2(t *testing.T) (string, string) {
	t.Helper()
	mounts, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer mounts.Close()

	mount := ""
	scanner := bufio.NewScanner(mounts)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		for i, field := range fields {
			if field == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" {
				mount = fields[4]
			}
		}
	}
	if mount == "" {
		t.Fatal("this test runs systemd on a cgroup2 hierarchy, and the host has none mounted")
	}

	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(own), "\n") {
		if path, ok := strings.CutPrefix(line, "0::"); ok {
			return mount, path
		}
	}
	t.Fatal("the test's process has no cgroup2 cgroup")
	return "", ""
}

// waitSystemd returns the host pid of the test's systemd once its private socket is up.
func waitSystemd(t *testing.T, cgroup string) int {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		data, err := os.ReadFile(filepath.Join(cgroup, "init.scope", "cgroup.procs"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(data), "\n", 2)[0]))
		if err != nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/root/run/systemd/private", pid)); err == nil {
			return pid
		}
	}
	t.Fatal("the test's systemd did not start within 20s")
	return 0
}

// removeCgroup removes the test's cgroup and the ones systemd made below it.
func removeCgroup(t *testing.T, cgroup string) {
	var dirs []string
	_ = filepath.WalkDir(cgroup, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = os.Remove(dirs[i])
		}
		if _, err := os.Stat(cgroup); os.IsNotExist(err) {
			return
		}
	}
	t.Errorf("the cgroup %s of the test's systemd is left over", cgroup)
}

// systemctl runs systemctl in the test's systemd's namespaces.
func (n *systemdNode) systemctl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(n.pid1), "-m", "-p", "systemctl"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("systemctl %v in the test's systemd failed: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

func (n *systemdNode) mainPid(t *testing.T) string {
	t.Helper()
	return n.systemctl(t, "show", "--property=MainPID", "--value", testUnit)
}

// run runs the installer in the PID namespace of the test's systemd, whose private
// socket accepts only peers it can see, with --host-root pointing at its view.
func (n *systemdNode) run(t *testing.T, action string) {
	t.Helper()
	root := fmt.Sprintf("/proc/%d/root", n.pid1)
	args := []string{"-t", strconv.Itoa(n.pid1), "-p", "--", n.binary, action, "--restart", "systemd",
		"--systemd-unit", testUnit, "--host-root", root, "--containerd-config", n.config,
		"--containerd-socket", filepath.Join(n.dir, "c.sock"), "--install-dir", filepath.Join(n.dir, "reaper"),
		"--link-dir", "", "--lock-file", filepath.Join(n.dir, "installer.lock"), "--restart-timeout", n.timeout}
	if action == "install" {
		args = append(args, "--source-dir", filepath.Dir(n.binary))
	}
	if out, err := exec.Command("nsenter", args...).CombinedOutput(); err != nil {
		t.Fatalf("reaper-installer %s with --restart systemd failed: %v\n%s", action, err, out)
	}
}
