package controllers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig("", "reaper-system", "registry.test/reaper:v1")
	if err != nil {
		t.Fatalf("LoadConfig with the defaults: %v", err)
	}
	if cfg.Namespace != "reaper-system" {
		t.Errorf("namespace is %q, want the controller's, reaper-system", cfg.Namespace)
	}
	if cfg.Agent.Image != "registry.test/reaper:v1" {
		t.Errorf("agent.image is %q, want the controller's image", cfg.Agent.Image)
	}
	if cfg.Admission.AgentPolicyName != DefaultAgentPolicyName || cfg.Admission.PolicyName != DefaultPolicyName {
		t.Errorf("policy names are %q and %q, want the defaults", cfg.Admission.PolicyName, cfg.Admission.AgentPolicyName)
	}
}

func TestLoadConfigFileOverridesFlags(t *testing.T) {
	path := writeConfig(t, "namespace: other\nagent:\n  image: registry.test/agent:v2\n")
	cfg, err := LoadConfig(path, "reaper-system", "registry.test/reaper:v1")
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if cfg.Namespace != "other" || cfg.Agent.Image != "registry.test/agent:v2" {
		t.Errorf("namespace %q and agent.image %q, want the file's other and registry.test/agent:v2", cfg.Namespace, cfg.Agent.Image)
	}
}

func TestLoadConfigRejectsInvalid(t *testing.T) {
	for _, tc := range []struct {
		name, content, image, want string
	}{
		{"no image", "", "", "agent.image is empty"},
		{"same policy names", "admission:\n  policyName: reaper\n  agentPolicyName: reaper\n", "img", "give the two policies different names"},
		{"invalid agent policy name", "admission:\n  agentPolicyName: Not_A_Name\n", "img", "admission.agentPolicyName"},
		{"unknown field", "admission:\n  polcyName: typo\n", "img", "polcyName"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, tc.content), "reaper-system", tc.image)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadConfig: %v, want an error that contains %q", err, tc.want)
			}
		})
	}
}
