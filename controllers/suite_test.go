package controllers

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"
)

// The shared test environment: a real kube-apiserver and etcd from KUBEBUILDER_ASSETS,
// with the controller's manager running against it.
var (
	testEnv    *envtest.Environment
	restConfig *rest.Config
	// k8sClient is the test's own client, without a cache.
	k8sClient client.Client
	testCfg   Config
	// requests counts the requests of the manager: its cache, its client and its Events.
	requests    = &requestCounter{}
	stopManager func()
	// controllerConfig is the client config of the controller's user, with the
	// controller's ClusterRole.
	controllerConfig *rest.Config
)

const (
	testNamespace = "reaper-system"
	testPoolLabel = "test.reaper.dev/pool"
	testImage     = "registry.test/reaper:v0.0.0-test"
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: the controller tests need a real etcd and kube-apiserver. "+
			"Run `make unit`, or `export KUBEBUILDER_ASSETS=$(hack/envtest-bins.sh)` first.")
		return 1
	}
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(testLogWriter())))

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	var err error
	restConfig, err = testEnv.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "start envtest with KUBEBUILDER_ASSETS=%s: %v\n", os.Getenv("KUBEBUILDER_ASSETS"), err)
		return 1
	}
	defer func() {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop envtest: %v\n", err)
		}
	}()

	if err := startManager(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stopManager()
	return m.Run()
}

// startManager creates the test namespace and starts the controller's manager with the
// test config, counting its requests.
func startManager() error {
	scheme, err := NewScheme()
	if err != nil {
		return err
	}
	k8sClient, err = client.New(restConfig, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("create the test client: %w", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace}}
	if err := k8sClient.Create(context.Background(), ns); client.IgnoreAlreadyExists(err) != nil {
		return fmt.Errorf("create namespace %s: %w", testNamespace, err)
	}

	testCfg = Config{Namespace: testNamespace, NodeSelector: map[string]string{testPoolLabel: "reaper"}}
	testCfg.Agent.Image = testImage
	testCfg.Default()
	if err := testCfg.Validate(); err != nil {
		return fmt.Errorf("test config: %w", err)
	}

	controllerConfig, err = controllerUserConfig()
	if err != nil {
		return err
	}
	managerConfig := rest.CopyConfig(controllerConfig)
	managerConfig.QPS, managerConfig.Burst = 200, 400
	managerConfig.Wrap(requests.wrap)
	mgr, err := NewManager(managerConfig, Options{
		Config:                 testCfg,
		MetricsBindAddress:     "0",
		HealthProbeBindAddress: "0",
		NodeWorkers:            4,
		SkipNameValidation:     true,
		// Leader election checks the lease rules of the controller's Role.
		LeaderElection:          true,
		LeaderElectionNamespace: testNamespace,
	})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stopManager = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintf(os.Stderr, "controller manager: %v\n", err)
		}
	})
	return nil
}

// controllerUser is the user that the controller runs as in the tests. It has the
// ClusterRole of config/rbac/role.yaml and nothing else, so the tests fail when that
// role misses a permission.
const controllerUser = "reaper-controller-test"

// controllerUserConfig creates the controller's ClusterRole and Role from
// config/rbac/role.yaml, binds them to controllerUser, and returns a client config of
// that user. The Role goes into the test namespace, as the chart puts it into its
// release namespace.
func controllerUserConfig() (*rest.Config, error) {
	data, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	if err != nil {
		return nil, fmt.Errorf("read the controller's roles: %w", err)
	}
	for _, document := range strings.Split(string(data), "\n---\n") {
		if strings.TrimSpace(strings.TrimPrefix(document, "---")) == "" {
			continue
		}
		if err := bindControllerRole(document); err != nil {
			return nil, err
		}
	}
	user, err := testEnv.AddUser(envtest.User{Name: controllerUser}, restConfig)
	if err != nil {
		return nil, fmt.Errorf("add user %s: %w", controllerUser, err)
	}
	return user.Config(), nil
}

// bindControllerRole creates the ClusterRole or Role of one YAML document and binds it
// to controllerUser.
func bindControllerRole(document string) error {
	subjects := []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: controllerUser}}
	var objects []client.Object
	switch {
	case strings.Contains(document, "kind: ClusterRole\n"):
		role := &rbacv1.ClusterRole{}
		if err := yaml.UnmarshalStrict([]byte(document), role); err != nil {
			return fmt.Errorf("decode the ClusterRole of config/rbac/role.yaml: %w", err)
		}
		objects = append(objects, role, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: role.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects:   subjects,
		})
	case strings.Contains(document, "kind: Role\n"):
		role := &rbacv1.Role{}
		if err := yaml.UnmarshalStrict([]byte(document), role); err != nil {
			return fmt.Errorf("decode the Role of config/rbac/role.yaml: %w", err)
		}
		role.Namespace = testNamespace
		objects = append(objects, role, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: role.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
			Subjects:   subjects,
		})
	default:
		return fmt.Errorf("config/rbac/role.yaml has a document that is neither a ClusterRole nor a Role:\n%s", document)
	}
	for _, obj := range objects {
		if err := k8sClient.Create(context.Background(), obj); client.IgnoreAlreadyExists(err) != nil {
			return fmt.Errorf("create %T %s: %w", obj, obj.GetName(), err)
		}
	}
	return nil
}

// testLogWriter sends the controller's logs to stderr when REAPER_TEST_LOGS is set, and
// drops them otherwise.
func testLogWriter() *os.File {
	if os.Getenv("REAPER_TEST_LOGS") != "" {
		return os.Stderr
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return os.Stderr
	}
	return devNull
}

// requestCounter counts HTTP requests by method, such as PATCH, and by method and path.
type requestCounter struct {
	mu     sync.Mutex
	byVerb map[string]int
	byPath map[string]int
}

func (c *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		c.mu.Lock()
		if c.byVerb == nil {
			c.byVerb, c.byPath = map[string]int{}, map[string]int{}
		}
		c.byVerb[req.Method]++
		c.byPath[req.Method+" "+req.URL.Path]++
		c.mu.Unlock()
		return rt.RoundTrip(req)
	})
}

// reset clears the counts and returns the writes counted before, by method and path.
func (c *requestCounter) reset() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	writes := map[string]int{}
	for key, n := range c.byPath {
		if !strings.HasPrefix(key, http.MethodGet+" ") {
			writes[key] = n
		}
	}
	c.byVerb, c.byPath = map[string]int{}, map[string]int{}
	return writes
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// eventually calls check every 100 ms until it returns nil, and fails the test with its
// last error after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// consistently calls check every 100 ms for duration, and fails the test when it
// returns an error.
func consistently(t *testing.T, duration time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(duration)
	for time.Now().Before(deadline) {
		if err := check(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
