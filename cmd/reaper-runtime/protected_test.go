package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestRuntimeCLIProtectedReadOnly runs a bundle with --protected read-only: the host root
// refuses writes, /etc/shadow reads empty, and the bundle's bind mount, at a path the host
// does not have, takes writes that reach its source.
func TestRuntimeCLIProtectedReadOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the protected mode mounts in a new mount namespace, which needs root; run the unit tests as root")
	}
	binary := buildRuntime(t)
	root := t.TempDir()
	volume := t.TempDir()
	dest := "/reaper-cli-" + filepath.Base(volume)

	script := `touch /etc/reaper-cli-test 2>/dev/null && echo root-writable || echo root-read-only
wc -c < /etc/shadow
echo done`
	bundle := t.TempDir()
	spec := specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: []string{"sh", "-c", "{\n" + script + "\n} > \"$OUT/result\""},
			Env:  []string{"PATH=/usr/bin:/bin", "OUT=" + dest},
			Cwd:  "/",
		},
		Mounts: []specs.Mount{{Destination: dest, Type: "bind", Source: volume, Options: []string{"rbind", "rw"}}},
	}
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = exec.Command(binary, "--root", root, "delete", "--force", "protected").Run() })
	// The container's process inherits the stdio of create: no pipe the test would wait on.
	for _, args := range [][]string{{"create", "--protected", "read-only", "--bundle", bundle, "protected"}, {"start", "protected"}} {
		if err := exec.Command(binary, append([]string{"--root", root}, args...)...).Run(); err != nil {
			t.Fatalf("%s failed: %v", args[0], err)
		}
	}

	result := filepath.Join(volume, "result")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if data, err := os.ReadFile(result); err == nil && strings.HasSuffix(string(data), "done\n") {
			break
		}
	}
	got, err := os.ReadFile(result)
	if err != nil {
		t.Fatalf("the container wrote no result through its bind mount: %v", err)
	}
	if want := "root-read-only\n0\ndone\n"; string(got) != want {
		t.Errorf("the container printed %q, want %q", got, want)
	}

	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Errorf("the mount point %s exists on the host (%v)", dest, err)
	}
}

func TestRuntimeCLIInvalidProtectedRoot(t *testing.T) {
	binary := buildRuntime(t)
	output, err := exec.Command(binary, "--root", t.TempDir(), "create", "--protected", "tmpfs", "demo").CombinedOutput()
	if err == nil || !strings.Contains(string(output), `invalid --protected "tmpfs"`) {
		t.Errorf("create --protected tmpfs printed %q (%v), want an error that names the value", output, err)
	}
}
