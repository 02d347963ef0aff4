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

// buildRuntime builds the reaper-runtime binary, since create re-executes it as the init
// helper.
func buildRuntime(t *testing.T) string {
	t.Helper()
	binary := filepath.Join(t.TempDir(), "reaper-runtime")
	build := exec.Command("go", "build", "-o", binary, ".")
	if output, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of reaper-runtime failed: %v\n%s", err, output)
	}
	return binary
}

// writeBundle writes an OCI bundle whose process appends a line to out and sleeps.
func writeBundle(t *testing.T, out string) string {
	t.Helper()
	bundle := t.TempDir()
	spec := specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: []string{"sh", "-c", `echo "started $$" >> "$OUT"; exec sleep 60`},
			Env:  []string{"PATH=/usr/bin:/bin", "OUT=" + out},
			Cwd:  "/",
			User: specs.User{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())},
		},
		Root:        &specs.Root{Path: "rootfs"},
		Annotations: map[string]string{"example": "yes"},
	}
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return bundle
}

func TestRuntimeCLILifecycle(t *testing.T) {
	binary := buildRuntime(t)
	root := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	bundle := writeBundle(t, out)

	// The container's process inherits the stdio of create and keeps it open, so no
	// command gets a pipe the test would wait on: output goes through a file.
	run := func(args ...string) (string, error) {
		output, err := os.CreateTemp(t.TempDir(), "output")
		if err != nil {
			t.Fatal(err)
		}
		defer output.Close()

		cmd := exec.Command(binary, append([]string{"--root", root}, args...)...)
		cmd.Stdout = output
		if err := cmd.Run(); err != nil {
			return "", err
		}
		data, err := os.ReadFile(output.Name())
		return string(data), err
	}
	state := func() specs.State {
		t.Helper()
		output, err := run("state", "demo")
		if err != nil {
			t.Fatalf("state failed: %v", err)
		}
		var s specs.State
		if err := json.Unmarshal([]byte(output), &s); err != nil {
			t.Fatalf("state printed invalid JSON %q: %v", output, err)
		}
		return s
	}
	t.Cleanup(func() { _, _ = run("delete", "--force", "demo") })

	if _, err := run("create", "--bundle", bundle, "demo"); err != nil {
		t.Fatalf("create failed: %v", err)
	}
	created := state()
	if created.Status != "created" {
		t.Errorf("status after create = %q, want created", created.Status)
	}
	if created.Pid == 0 {
		t.Error("state after create has no pid")
	}
	if created.Bundle != bundle {
		t.Errorf("bundle = %q, want %q", created.Bundle, bundle)
	}
	if created.Annotations["example"] != "yes" {
		t.Errorf("annotations = %v, want the bundle's example=yes", created.Annotations)
	}

	if _, err := run("start", "demo"); err != nil {
		t.Fatalf("start failed: %v", err)
	}
	waitForFile(t, out)
	if got := state(); got.Status != "running" || got.Pid != created.Pid {
		t.Errorf("state after start = %+v, want running with pid %d", got, created.Pid)
	}

	if _, err := run("delete", "demo"); err == nil {
		t.Error("delete of a running container succeeded, want an error that asks for --force")
	}

	listed, err := run("list", "--format", "json")
	if err != nil {
		t.Fatalf("list failed: %v", err)
	}
	var states []specs.State
	if err := json.Unmarshal([]byte(listed), &states); err != nil {
		t.Fatalf("list --format json printed invalid JSON %q: %v", listed, err)
	}
	if len(states) != 1 || states[0].ID != "demo" {
		t.Errorf("list --format json = %q, want only the container demo", listed)
	}

	if _, err := run("kill", "demo", "KILL"); err != nil {
		t.Fatalf("kill failed: %v", err)
	}
	waitForStatus(t, state, "stopped")

	if _, err := run("delete", "demo"); err != nil {
		t.Fatalf("delete of a stopped container failed: %v", err)
	}
	if _, err := run("state", "demo"); err == nil {
		t.Error("state after delete succeeded, want a not found error")
	}
}

func TestRuntimeCLIInvalidSignal(t *testing.T) {
	binary := buildRuntime(t)
	output, err := exec.Command(binary, "--root", t.TempDir(), "kill", "demo", "BOGUS").CombinedOutput()
	if err == nil || !strings.Contains(string(output), `invalid signal "BOGUS"`) {
		t.Errorf("kill with signal BOGUS printed %q (%v), want an error that names the signal", output, err)
	}
}

func waitForFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if data, err := os.ReadFile(path); err == nil && len(data) > 0 {
			return
		}
	}
	t.Fatalf("the container's process wrote nothing to %s within 10s", path)
}

func waitForStatus(t *testing.T, state func() specs.State, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if state().Status == specs.ContainerState(want) {
			return
		}
	}
	t.Fatalf("the container is %s after 10s, want %s", state().Status, want)
}
