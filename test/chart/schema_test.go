package chart

import (
	"strings"
	"testing"
)

func TestSchemaRejectsBadValues(t *testing.T) {
	cases := []struct {
		name    string
		values  map[string]any
		message string // a part of the error that names the bad value
	}{
		{"unknown top-level key", map[string]any{"nodeSelectors": map[string]any{}}, "nodeSelectors"},
		{"unknown nested key", values(map[string]any{"agent.installDirectory": "/opt/x"}), "installDirectory"},
		{"bad restartMethod", values(map[string]any{"agent.restartMethod": "reboot"}), "restartMethod"},
		{"negative maxUnavailable", values(map[string]any{"agent.maxUnavailable": -1}), "maxUnavailable"},
		{"zero maxUnavailable", values(map[string]any{"agent.maxUnavailable": 0}), "maxUnavailable"},
		{"percentage above 100", values(map[string]any{"agent.maxUnavailable": "150%"}), "maxUnavailable"},
		{"bad pullPolicy", values(map[string]any{"image.pullPolicy": "Sometimes"}), "pullPolicy"},
		{"empty repository", values(map[string]any{"image.repository": ""}), "repository"},
		{"bad digest", values(map[string]any{"image.digest": "md5:abc"}), "digest"},
		{"relative hostPath", values(map[string]any{"agent.hostPaths": []any{"etc/containerd"}}), "hostPaths"},
		{"root hostPath", values(map[string]any{"agent.hostPaths": []any{"/"}}), "hostPaths"},
		{"no hostPaths", values(map[string]any{"agent.hostPaths": []any{}}), "hostPaths"},
		{"root installDir", values(map[string]any{"agent.installDir": "/"}), "installDir"},
		{"bad resyncPeriod", values(map[string]any{"agent.resyncPeriod": "5 minutes"}), "resyncPeriod"},
		{"bad teardown timeout", values(map[string]any{"teardown.timeout": "ten"}), "timeout"},
		{"bad namespaceLabel", values(map[string]any{"admission.namespaceLabel": "opt in!"}), "namespaceLabel"},
		{"uppercase RuntimeClass", values(map[string]any{"runtimeClasses.name": "Reaper"}), "name"},
		{"uppercase handler", values(map[string]any{"runtimeClasses.protected.handler": "Reaper_RO"}), "handler"},
		{"string for boolean", values(map[string]any{"crds.install": "yes"}), "install"},
		{"non-string node selector", map[string]any{"nodeSelector": map[string]any{"example.com/hpc": true}}, "nodeSelector"},
		{"bad toleration operator", values(map[string]any{"agent.tolerations": []any{map[string]any{"operator": "Always"}}}), "operator"},
		{"bad memory quantity", values(map[string]any{"controller.resources": map[string]any{"limits": map[string]any{"memory": "lots"}}}), "memory"},
		{"port out of range", values(map[string]any{"controller.metricsPort": 70000}), "metricsPort"},
	}
	chart := loadChart(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderChart(chart, tc.values, kubeVersion)
			if err == nil {
				t.Fatalf("values %v rendered without an error", tc.values)
			}
			if !strings.Contains(err.Error(), "schema") {
				t.Errorf("error is not from the schema: %v", err)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error does not name %q: %v", tc.message, err)
			}
		})
	}
}

func TestSchemaAcceptsEdgeValues(t *testing.T) {
	cases := map[string]map[string]any{
		"percentage maxUnavailable": values(map[string]any{"agent.maxUnavailable": "100%"}),
		"large maxUnavailable":      values(map[string]any{"agent.maxUnavailable": 50}),
		"numeric cpu":               values(map[string]any{"agent.resources": map[string]any{"requests": map[string]any{"cpu": 1}}}),
		"no resources":              values(map[string]any{"agent.resources": map[string]any{}, "controller.resources": map[string]any{}}),
		"every restart method":      values(map[string]any{"agent.restartMethod": "none"}),
		"composite duration":        values(map[string]any{"agent.resyncPeriod": "1h30m", "teardown.timeout": "90s"}),
		"label without prefix":      values(map[string]any{"admission.namespaceLabel": "reaper-allowed"}),
		"zero controller replicas":  values(map[string]any{"controller.replicas": 0}),
		"toleration with seconds": values(map[string]any{"agent.tolerations": []any{
			map[string]any{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
		}}),
	}
	chart := loadChart(t)
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := renderChart(chart, v, kubeVersion); err != nil {
				t.Errorf("values %v rejected: %v", v, err)
			}
		})
	}
}
