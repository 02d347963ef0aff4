package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// protectedHandler is the handler hack/containerd-up.sh registers in the protected mode,
// with the host root behind an overlay.
const protectedHandler = "reaper-protected"

// TestProtectedMode runs a pod with the protected handler and checks what its container
// can see and change: secrets masked, writes to the root kept in the container, the
// host's other mounts visible and read-only, volumes writable as usual.
func TestProtectedMode(t *testing.T) {
	s := start(t)
	p := s.runPod(t, "protected", protectedHandler)
	suffix := randomSuffix(t)

	hostShadow, err := os.Stat("/etc/shadow")
	if err != nil || hostShadow.Size() == 0 {
		t.Fatalf("this test needs a non-empty /etc/shadow on the host to check that it is masked (stat: %v)", err)
	}
	submount := hostTmpfs(t, "visible")
	volume := writeVolume(t, sharedDir(t), "volume", "", "")

	rootFile := "/reaper-e2e-" + suffix
	config := shellConfig("protected", `wc -c < /etc/shadow
echo changed > "$1" && cat "$1"
cat "$2/file"; touch "$2/new" 2>/dev/null && echo submount-writable || echo submount-read-only
echo to-volume > /data/out && echo volume-written
echo started; exec sleep 600`, rootFile, submount)
	config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: volume}}
	// The kubelet gives the containers of a BestEffort pod oom_score_adj 1000, which must be
	// written although /proc is read-only in the protected view.
	config.Linux.Resources = &runtimeapi.LinuxContainerResources{OomScoreAdj: 1000}
	c := s.runContainer(t, p, config)
	entries := waitLogLine(t, c, "stdout", "started")
	if got, err := readInt(fmt.Sprintf("/proc/%d/oom_score_adj", s.containerPid(t, c))); err != nil || got != 1000 {
		t.Errorf("the protected container has oom_score_adj %d (%v), expected the requested 1000", got, err)
	}

	want := []string{"0", "changed", "visible", "submount-read-only", "volume-written", "started"}
	if got := logLines(entries, "stdout"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("the container printed %q, expected %q", got, want)
	}

	if _, err := os.Stat(rootFile); !os.IsNotExist(err) {
		t.Errorf("%s, written by the container, exists on the host (%v); writes to the root stay in its overlay", rootFile, err)
	}
	if data, err := os.ReadFile(filepath.Join(volume, "out")); err != nil || string(data) != "to-volume\n" {
		t.Errorf("the volume on the host holds out = %q (%v), expected what the container wrote", data, err)
	}
	if now, err := os.Stat("/etc/shadow"); err != nil || now.Size() != hostShadow.Size() {
		t.Errorf("the host's /etc/shadow changed (%v)", err)
	}

	resp := s.execSync(t, c, "/bin/cat", rootFile)
	if got := string(resp.GetStdout()); got != "changed\n" {
		t.Errorf("an exec reads %q from %s (stderr %q), expected the container's own write", got, rootFile, resp.GetStderr())
	}

	// A second container of the pod starts from the host root again.
	other := s.runContainer(t, p, shellConfig("other", `cat "$1" 2>/dev/null || echo absent; echo started; exec sleep 600`, rootFile))
	if got := logLines(waitLogLine(t, other, "stdout", "started"), "stdout"); got[0] != "absent" {
		t.Errorf("another container of the pod reads %q from %s, expected the host's view without it", got[0], rootFile)
	}
}

// hostTmpfs mounts a tmpfs holding one file on a new host folder, for the length of the test.
func hostTmpfs(t *testing.T, content string) string {
	t.Helper()
	dir := sharedDir(t)
	if err := unix.Mount("reaper-e2e", dir, "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })

	if err := os.WriteFile(filepath.Join(dir, "file"), []byte(content+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
