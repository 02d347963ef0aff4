package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// runtimeClass is the chart's default RuntimeClass of host-process pods.
const runtimeClass = "reaper"

// sleepLoop prints the shell's PID on the node, then a marker, and sleeps until SIGTERM. The
// kubelet turns $$ in a command into $, so $$$$ reaches the shell as $$.
const sleepLoop = `echo pid=$$$$; echo %s; trap "echo stopping; exit 0" TERM; while true; do sleep 1; done`

// reaperPodSpec returns the spec of a pod whose one container runs script with the node's
// /bin/sh through the reaper RuntimeClass. The image is the placeholder, whose files Reaper does
// not use.
func (c *cluster) reaperPodSpec(restart corev1.RestartPolicy, script string) corev1.PodSpec {
	class := runtimeClass
	return corev1.PodSpec{
		RuntimeClassName: &class,
		RestartPolicy:    restart,
		Containers: []corev1.Container{{
			Name:            "main",
			Image:           c.placeholder,
			ImagePullPolicy: corev1.PullNever,
			Command:         []string{"/bin/sh", "-c", script},
		}},
	}
}

// reaperPod returns a pod of the workload namespace with the spec of reaperPodSpec.
func (c *cluster) reaperPod(name string, restart corev1.RestartPolicy, script string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: workloadNamespace},
		Spec:       c.reaperPodSpec(restart, script),
	}
}

// deleteLater deletes the object of kind and name in the workload namespace when the test ends.
func (c *cluster) deleteLater(t *testing.T, kind, name string) {
	t.Cleanup(func() {
		if _, err := c.kubectl("-n", workloadNamespace, "delete", kind, name, "--ignore-not-found", "--timeout", waitTimeout.String()); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
}

func (s *suite) testPodLogsAndExec(t *testing.T) {
	c := s.cluster
	c.apply(t, c.reaperPod(sleeperPod, corev1.RestartPolicyAlways, fmt.Sprintf(sleepLoop, sleeperMarker)))
	c.waitPodReady(t, workloadNamespace, sleeperPod)

	s.sleeperPID = c.hostPID(t, workloadNamespace, sleeperPod, sleeperMarker)
	if out := c.mustKubectl(t, "-n", workloadNamespace, "logs", sleeperPod); !strings.Contains(out, sleeperMarker) {
		t.Errorf("kubectl logs %s printed %q, expected it to contain %q", sleeperPod, out, sleeperMarker)
	}

	out := c.mustKubectl(t, "-n", workloadNamespace, "exec", sleeperPod, "--", "/bin/sh", "-c", "echo exec-ok uid=$(id -u)")
	if strings.TrimSpace(out) != "exec-ok uid=0" {
		t.Errorf("kubectl exec printed %q, expected \"exec-ok uid=0\"", out)
	}

	out, err := run("piped-stdin\n", c.kubectlBin, "--kubeconfig", filepath.Join(c.dir, "kubeconfig"),
		"-n", workloadNamespace, "exec", "-i", sleeperPod, "--", "/bin/cat")
	if err != nil || strings.TrimSpace(out) != "piped-stdin" {
		t.Errorf("kubectl exec -i with cat echoed %q (error %v), expected \"piped-stdin\"", out, err)
	}

	s.checkExecTTY(t)
}

// checkExecTTY runs kubectl exec -it under script(1), which gives kubectl a terminal as a user's
// shell would, and checks that the command gets a terminal of its own.
func (s *suite) checkExecTTY(t *testing.T) {
	c := s.cluster
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatalf("script (util-linux) is missing, so kubectl exec -it cannot get a terminal: %v; run hack/install-deps.sh", err)
	}
	command := fmt.Sprintf("%s --kubeconfig %s -n %s exec -it %s -- /bin/sh -c 'tty; echo it-ok'",
		c.kubectlBin, filepath.Join(c.dir, "kubeconfig"), workloadNamespace, sleeperPod)
	out, err := run("", "script", "--quiet", "--return", "--command", command, "/dev/null")
	if err != nil {
		t.Fatalf("kubectl exec -it: %v", err)
	}
	if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "it-ok") {
		t.Errorf("kubectl exec -it printed %q, expected a /dev/pts terminal from tty and \"it-ok\"", out)
	}
}

func (s *suite) testGracefulDelete(t *testing.T) {
	c := s.cluster

	c.apply(t, c.reaperPod("graceful", corev1.RestartPolicyAlways, fmt.Sprintf(sleepLoop, "graceful started")))
	c.waitPodReady(t, workloadNamespace, "graceful")
	pid := c.hostPID(t, workloadNamespace, "graceful", "graceful started")
	start := time.Now()
	c.mustKubectl(t, "-n", workloadNamespace, "delete", "pod", "graceful", "--grace-period=60", "--timeout", waitTimeout.String())
	// The process exits on SIGTERM, so the kubelet never waits out the 60 s grace period.
	if elapsed := time.Since(start); elapsed >= 60*time.Second {
		t.Errorf("kubectl delete --grace-period=60 took %s: the container did not stop on SIGTERM", elapsed.Round(time.Second))
	}
	if processAlive(pid, "graceful started") {
		t.Errorf("the process of pod graceful (PID %s) still runs after kubectl delete", pid)
	}

	// This one ignores SIGTERM, so the kubelet kills it when the grace period ends.
	c.apply(t, c.reaperPod("stubborn", corev1.RestartPolicyAlways, `echo pid=$$$$; echo stubborn started; trap "" TERM; while true; do sleep 1; done`))
	c.waitPodReady(t, workloadNamespace, "stubborn")
	pid = c.hostPID(t, workloadNamespace, "stubborn", "stubborn started")
	start = time.Now()
	c.mustKubectl(t, "-n", workloadNamespace, "delete", "pod", "stubborn", "--grace-period=3", "--timeout", waitTimeout.String())
	if elapsed := time.Since(start); elapsed < 3*time.Second {
		t.Errorf("kubectl delete --grace-period=3 of a process that ignores SIGTERM took %s, less than the grace period", elapsed.Round(100*time.Millisecond))
	}
	if processAlive(pid, "stubborn started") {
		t.Errorf("the process of pod stubborn (PID %s) still runs after kubectl delete --grace-period=3", pid)
	}
}

func (s *suite) testDeployment(t *testing.T) {
	c := s.cluster
	labels := map[string]string{"app": "reaper-deployment"}
	replicas := int32(2)
	c.apply(t, &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "sleepers", Namespace: workloadNamespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       c.reaperPodSpec(corev1.RestartPolicyAlways, fmt.Sprintf(sleepLoop, "deployment pod started")),
			},
		},
	})
	c.deleteLater(t, "deployment", "sleepers")
	c.mustKubectl(t, "-n", workloadNamespace, "rollout", "status", "deployment/sleepers", "--timeout", waitTimeout.String())

	out := c.mustKubectl(t, "-n", workloadNamespace, "get", "pods", "-l", "app=reaper-deployment",
		"-o", "jsonpath={range .items[*]}{.spec.runtimeClassName} {.status.phase}{\"\\n\"}{end}")
	if strings.Count(out, "reaper Running") != 2 {
		t.Errorf("the Deployment's pods are %q (RuntimeClass and phase), expected two with RuntimeClass reaper in phase Running", out)
	}
}

func (s *suite) testJob(t *testing.T) {
	c := s.cluster
	backoff := int32(0)
	c.apply(t, &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: "once", Namespace: workloadNamespace},
		Spec: batchv1.JobSpec{
			BackoffLimit: &backoff,
			Template: corev1.PodTemplateSpec{
				Spec: c.reaperPodSpec(corev1.RestartPolicyNever, `echo job ran as uid $(id -u)`),
			},
		},
	})
	c.deleteLater(t, "job", "once")
	if _, err := c.kubectl("-n", workloadNamespace, "wait", "--for=condition=Complete", "job/once", "--timeout", waitTimeout.String()); err != nil {
		describe, _ := c.kubectl("-n", workloadNamespace, "describe", "job", "once")
		t.Fatalf("job once did not complete: %v\n%s", err, describe)
	}
	if out := c.mustKubectl(t, "-n", workloadNamespace, "logs", "job/once"); !strings.Contains(out, "job ran as uid 0") {
		t.Errorf("kubectl logs job/once printed %q, expected \"job ran as uid 0\"", out)
	}
}

func (s *suite) testDaemonSet(t *testing.T) {
	c := s.cluster
	labels := map[string]string{"app": "reaper-daemonset"}
	c.apply(t, &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{Name: "per-node", Namespace: workloadNamespace},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       c.reaperPodSpec(corev1.RestartPolicyAlways, fmt.Sprintf(sleepLoop, "daemonset pod started")),
			},
		},
	})
	c.deleteLater(t, "daemonset", "per-node")
	c.mustKubectl(t, "-n", workloadNamespace, "rollout", "status", "daemonset/per-node", "--timeout", waitTimeout.String())
	if ready := c.jsonpath(workloadNamespace, "daemonset/per-node", "{.status.numberReady}"); ready != "1" {
		t.Errorf("DaemonSet per-node has %q ready pods, expected 1 on the one node", ready)
	}
}

func (s *suite) testConfigMapSecretToken(t *testing.T) {
	c := s.cluster
	c.apply(t, &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: workloadNamespace},
		Data:       map[string]string{"greeting": "hello-from-configmap"},
	})
	c.deleteLater(t, "configmap", "settings")
	c.apply(t, &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: "credentials", Namespace: workloadNamespace},
		StringData: map[string]string{"password": "secret-from-secret"},
	})
	c.deleteLater(t, "secret", "credentials")

	// The token authenticates a SelfSubjectReview, which every authenticated user may create,
	// and the API server returns the token's user name.
	pod := c.reaperPod("reader", corev1.RestartPolicyNever, `set -e
cat /etc/demo/config/greeting; echo
cat /etc/demo/secret/password; echo
sa=/var/run/secrets/kubernetes.io/serviceaccount
curl -sS --fail --cacert $sa/ca.crt -H "Authorization: Bearer $(cat $sa/token)" \
  -H "Content-Type: application/json" -X POST \
  -d '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' \
  "https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/apis/authentication.k8s.io/v1/selfsubjectreviews"`)
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
		{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "credentials"}}},
	}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
		{Name: "config", MountPath: "/etc/demo/config", ReadOnly: true},
		{Name: "secret", MountPath: "/etc/demo/secret", ReadOnly: true},
	}
	c.apply(t, pod)
	c.deleteLater(t, "pod", "reader")
	c.waitPodPhase(t, workloadNamespace, "reader", "Succeeded")

	out := c.mustKubectl(t, "-n", workloadNamespace, "logs", "reader")
	for _, want := range []string{"hello-from-configmap", "secret-from-secret", "system:serviceaccount:" + workloadNamespace + ":default"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl logs reader printed %q, expected it to contain %q", out, want)
		}
	}
}

func (s *suite) testService(t *testing.T) {
	c := s.cluster
	labels := map[string]string{"app": "reaper-web"}
	web := c.reaperPod("web", corev1.RestartPolicyAlways,
		`echo reaper-web-ok > /srv/www/index.html; exec python3 -m http.server 8080 --directory /srv/www`)
	web.Labels = labels
	web.Spec.Volumes = []corev1.Volume{{Name: "www", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	web.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "www", MountPath: "/srv/www"}}
	web.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}},
		PeriodSeconds: 1,
	}
	c.apply(t, web)
	c.deleteLater(t, "pod", "web")
	c.apply(t, &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: workloadNamespace},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	})
	c.deleteLater(t, "service", "web")
	c.waitPodReady(t, workloadNamespace, "web")

	if ip := c.jsonpath(workloadNamespace, "pod/web", "{.status.podIP}"); !strings.HasPrefix(ip, "10.88.79.") {
		t.Errorf("pod web has IP %q, expected one of the pod network 10.88.79.0/24, as it does not use hostNetwork", ip)
	}
	clusterIP := c.jsonpath(workloadNamespace, "service/web", "{.spec.clusterIP}")
	client := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: workloadNamespace},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "httpget", Image: c.httpget, ImagePullPolicy: corev1.PullNever,
				Args: []string{"-timeout=60s", "http://" + clusterIP + "/"},
			}},
		},
	}
	c.apply(t, client)
	c.deleteLater(t, "pod", "client")
	c.waitPodPhase(t, workloadNamespace, "client", "Succeeded")
	if out := c.mustKubectl(t, "-n", workloadNamespace, "logs", "client"); strings.TrimSpace(out) != "reaper-web-ok" {
		t.Errorf("the runc pod fetched %q through Service web (%s), expected \"reaper-web-ok\"", out, clusterIP)
	}
}

func (s *suite) testDeniedNamespace(t *testing.T) {
	c := s.cluster
	const denied = "reaper-denied"
	c.mustKubectl(t, "create", "namespace", denied)
	t.Cleanup(func() { _, _ = c.kubectl("delete", "namespace", denied, "--wait=false") })

	pod := c.reaperPod("refused", corev1.RestartPolicyNever, "echo should not run")
	pod.Namespace = denied
	out, err := c.applyErr(pod)
	if err == nil {
		t.Fatalf("a reaper pod was admitted in namespace %s, which lacks the label %s=true: %s", denied, optInLabel, out)
	}
	for _, want := range []string{
		"namespace " + denied + " may not run pods of RuntimeClass " + runtimeClass,
		"kubectl label namespace " + denied + " " + optInLabel + "=true",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the denial does not contain %q: %v", want, err)
		}
	}
}

func (s *suite) testOOMKilled(t *testing.T) {
	c := s.cluster
	pod := c.reaperPod("hog", corev1.RestartPolicyNever, `exec python3 -c "data = b'x' * (512 << 20)"`)
	limit := resource.MustParse("64Mi")
	pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceMemory: limit},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: limit},
	}
	c.apply(t, pod)
	c.deleteLater(t, "pod", "hog")

	eventually(t, waitTimeout, "pod hog terminated", func() error {
		reason := c.jsonpath(workloadNamespace, "pod/hog", "{.status.containerStatuses[0].state.terminated.reason}")
		if reason == "" {
			return errors.New("not terminated yet")
		}
		if reason != "OOMKilled" {
			exit := c.jsonpath(workloadNamespace, "pod/hog", "{.status.containerStatuses[0].state.terminated.exitCode}")
			t.Fatalf("pod hog over its 64Mi memory limit ended with reason %q (exit code %s), expected OOMKilled", reason, exit)
		}
		return nil
	})
}

func (s *suite) testHostBinary(t *testing.T) {
	c := s.cluster
	// The placeholder image holds one file, /placeholder, so uptime can only come from the node.
	pod := c.reaperPod("uptime", corev1.RestartPolicyNever, "")
	pod.Spec.Containers[0].Command = []string{"/usr/bin/uptime"}
	c.apply(t, pod)
	c.deleteLater(t, "pod", "uptime")
	c.waitPodPhase(t, workloadNamespace, "uptime", "Succeeded")
	if out := c.mustKubectl(t, "-n", workloadNamespace, "logs", "uptime"); !strings.Contains(out, "load average") {
		t.Errorf("kubectl logs uptime printed %q, expected the node's uptime with its load average", out)
	}
}

func (s *suite) testProtectedRuntimeClass(t *testing.T) {
	c := s.cluster
	// Under the overlay of the protected mode the write succeeds in the container, but the
	// node's /etc never gets the file, and /etc/shadow reads as empty.
	marker := filepath.Join("/etc", "reaper-e2e-protected-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	pod := c.reaperPod("protected", corev1.RestartPolicyNever, fmt.Sprintf(`set -e
echo written > %s
echo "inside: $(cat %s)"
echo "shadow bytes: $(wc -c < /etc/shadow)"`, marker, marker))
	protected := "reaper-protected"
	pod.Spec.RuntimeClassName = &protected
	c.apply(t, pod)
	c.deleteLater(t, "pod", "protected")
	c.waitPodPhase(t, workloadNamespace, "protected", "Succeeded")

	out := c.mustKubectl(t, "-n", workloadNamespace, "logs", "protected")
	if !strings.Contains(out, "inside: written") {
		t.Errorf("kubectl logs protected printed %q, expected the container to read back its own write", out)
	}
	if !strings.Contains(out, "shadow bytes: 0") {
		t.Errorf("kubectl logs protected printed %q, expected /etc/shadow masked as an empty file", out)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		_ = os.Remove(marker)
		t.Errorf("the protected pod's write reached the node's %s (stat: %v)", marker, err)
	}
}
