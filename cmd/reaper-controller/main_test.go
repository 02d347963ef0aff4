package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestControllerRejectsInvalidConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("agent:\n  restartMethod: reboot\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := runCommand(t, "--config", path, "--namespace", "reaper-system", "--image", "registry.test/reaper:v1")
	if err == nil || !strings.Contains(err.Error(), `agent.restartMethod "reboot"`) {
		t.Errorf("controller with restartMethod reboot: %v, want an error that names agent.restartMethod", err)
	}
}

func TestControllerNeedsNamespace(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	_, err := runCommand(t, "--image", "registry.test/reaper:v1")
	if err == nil || !strings.Contains(err.Error(), "--namespace") {
		t.Errorf("controller without a namespace: %v, want an error that names --namespace", err)
	}
}

func TestTeardownHelpNamesFlags(t *testing.T) {
	out, err := runCommand(t, "teardown", "--help")
	if err != nil {
		t.Fatalf("teardown --help: %v", err)
	}
	for _, flag := range []string{"--timeout", "--deployment", "--config", "--namespace", "--kubeconfig"} {
		if !strings.Contains(out, flag) {
			t.Errorf("teardown --help does not list %s:\n%s", flag, out)
		}
	}
}
