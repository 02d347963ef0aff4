package cluster

import (
	"testing"
)

// TestReaper runs the suite's steps in order. A failed install fails the rest at once, since
// each later step needs Reaper on the node.
func TestReaper(t *testing.T) {
	c := loadCluster(t)
	s := &suite{cluster: c}

	if !t.Run("helm install", s.testInstall) {
		t.Fatal("helm install failed, so the workload, upgrade and uninstall steps cannot run")
	}
	steps := []struct {
		name string
		test func(*testing.T)
	}{
		{"pod logs and exec", s.testPodLogsAndExec},
		{"delete with a grace period", s.testGracefulDelete},
		{"deployment", s.testDeployment},
		{"job", s.testJob},
		{"daemonset", s.testDaemonSet},
		{"configmap secret and token", s.testConfigMapSecretToken},
		{"service from a runc pod", s.testService},
		{"namespace without opt-in denied", s.testDeniedNamespace},
		{"memory limit OOMKilled", s.testOOMKilled},
		{"host binary", s.testHostBinary},
		{"protected runtimeclass", s.testProtectedRuntimeClass},
		{"helm upgrade keeps pods running", s.testUpgrade},
		{"helm uninstall reverts the node", s.testUninstall},
	}
	for _, step := range steps {
		t.Run(step.name, step.test)
	}
}
