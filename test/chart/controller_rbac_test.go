package chart

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// convergeTimeout bounds how long the controller may take to create what it keeps for one
// Node. It is a generous estimate: the controller took about 3 s against envtest.
const convergeTimeout = 60 * time.Second

var reaperNodeGVK = schema.GroupVersionKind{Group: "reaper.dev", Version: "v1alpha1", Kind: "ReaperNode"}

// TestControllerRunsWithInstalledRBAC runs reaper-controller and its teardown against a real
// kube-apiserver as the installed ServiceAccount, with the installed config, for both the chart
// and config/default. A rule missing from their RBAC shows up as a forbidden request.
func TestControllerRunsWithInstalledRBAC(t *testing.T) {
	binary := buildController(t)
	var installs []object
	for _, o := range kustomize(t, "../../config/default").Objects {
		if o.Kind != "Namespace" {
			installs = append(installs, o)
		}
	}
	cases := map[string]struct {
		objects []object
		image   string
	}{
		"chart":     {objects: render(t, nil).Objects, image: "reaper:0.1.0"},
		"kustomize": {objects: installs, image: "reaper:dev"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			runControllerAndTeardown(t, binary, tc.objects, tc.image)
		})
	}
}

// runControllerAndTeardown creates objects, runs the controller as its ServiceAccount until it
// keeps what it should for one Node, then runs the teardown and checks that all of it is gone.
func runControllerAndTeardown(t *testing.T, binary string, objects []object, image string) {
	ctx := context.Background()
	c, cfg, warnings := startAPIServer(t)
	createNamespace(ctx, t, c)
	createObjects(ctx, t, c, warnings, objects)
	kubeconfig := serviceAccountKubeconfig(ctx, t, cfg, controllerName)
	configFile := writeRenderedConfig(t, rendering{Objects: objects})
	env := []string{"KUBECONFIG=" + kubeconfig, "POD_NAMESPACE=" + releaseNamespace, "REAPER_IMAGE=" + image}

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{"kubernetes.io/os": "linux"}}}
	if err := c.Create(ctx, node); err != nil {
		t.Fatal(err)
	}

	controller := startProcess(t, binary, env, "--config="+configFile, "--leader-elect=true",
		"--metrics-bind-address=0", "--health-probe-bind-address=0")
	waitFor(t, "the controller keeps the ReaperNode, DaemonSet, RuntimeClasses and policy", func() error {
		return keptObjectsExist(ctx, c)
	})
	controller.stop(t)
	if strings.Contains(controller.output.String(), "forbidden") {
		t.Errorf("the controller met a forbidden request:\n%s", controller.output.String())
	}

	teardown := exec.Command(binary, "teardown", "--config="+configFile, "--deployment="+controllerName, "--timeout=1m")
	teardown.Env = append(os.Environ(), env...)
	out, err := teardown.CombinedOutput()
	if err != nil {
		t.Fatalf("reaper-controller teardown: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "forbidden") {
		t.Errorf("the teardown met a forbidden request:\n%s", out)
	}
	if err := keptObjectsGone(ctx, c); err != nil {
		t.Errorf("after the teardown: %v\n%s", err, out)
	}
}

// buildController builds cmd/reaper-controller into a temporary folder.
func buildController(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("../../cmd/reaper-controller"); err != nil {
		t.Fatalf("cmd/reaper-controller not found (%v): this test runs the controller, so it needs the controller's sources", err)
	}
	binary := filepath.Join(t.TempDir(), "reaper-controller")
	build := exec.Command("go", "build", "-o", binary, "reaper.dev/reaper/cmd/reaper-controller")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build reaper-controller: %v\n%s", err, out)
	}
	return binary
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates as the ServiceAccount name
// in the release namespace, with a token from the TokenRequest API.
func serviceAccountKubeconfig(ctx context.Context, t *testing.T, admin *rest.Config, name string) string {
	t.Helper()
	clientset, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	expiry := int64(3600)
	token, err := clientset.CoreV1().ServiceAccounts(releaseNamespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create a token for ServiceAccount %s: %v", name, err)
	}

	config := clientcmdapi.NewConfig()
	config.Clusters["envtest"] = &clientcmdapi.Cluster{Server: admin.Host, CertificateAuthorityData: admin.CAData}
	config.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: token.Status.Token}
	config.Contexts[name] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: name, Namespace: releaseNamespace}
	config.CurrentContext = name
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeRenderedConfig writes the config.yaml of the rendered ConfigMap to a file.
func writeRenderedConfig(t *testing.T, r rendering) string {
	t.Helper()
	var cm corev1.ConfigMap
	decode(t, r.find(t, "ConfigMap", configMapName), &cm)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cm.Data["config.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// process is a started reaper-controller and its combined output.
type process struct {
	cmd    *exec.Cmd
	output *bytes.Buffer
	done   chan error
}

// startProcess starts binary with args and env added to this process's environment.
func startProcess(t *testing.T, binary string, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(binary, args...), output: &bytes.Buffer{}, done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", binary, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			if err := <-p.done; err != nil {
				t.Logf("the controller was killed: %v", err)
			}
		}
	})
	return p
}

// stop sends SIGTERM and waits up to 30 seconds for the process to exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("stop the controller: %v", err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Logf("the controller exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the controller did not exit within 30s of SIGTERM:\n%s", p.output.String())
	}
}

// waitFor polls check until it returns nil, and fails the test after convergeTimeout.
func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(convergeTimeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s: %v", convergeTimeout, what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// keptObjectsExist returns an error naming the first object that the controller keeps for
// node-a with the default values and that does not exist yet.
func keptObjectsExist(ctx context.Context, c client.Client) error {
	for _, o := range keptObjects() {
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			return fmt.Errorf("get %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// keptObjectsGone returns an error naming the first kept object that still exists.
func keptObjectsGone(ctx context.Context, c client.Client) error {
	for _, o := range keptObjects() {
		err := c.Get(ctx, client.ObjectKeyFromObject(o), o)
		if err == nil {
			return fmt.Errorf("%T %s still exists", o, o.GetName())
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("get %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

func keptObjects() []client.Object {
	reaperNode := &unstructured.Unstructured{}
	reaperNode.SetGroupVersionKind(reaperNodeGVK)
	reaperNode.SetName("node-a")
	return []client.Object{
		reaperNode,
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: agentName, Namespace: releaseNamespace}},
		&nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "reaper"}},
		&nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "reaper-protected"}},
		&admissionv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "reaper-runtimeclass"}},
		&admissionv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: "reaper-runtimeclass"}},
	}
}
