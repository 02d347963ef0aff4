package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
	"reaper.dev/reaper/controllers"
)

const (
	namespace    = "reaper-system"
	agentManager = "reaper-agent"
)

// result holds what one run measured.
type result struct {
	opts options
	// created is how long creating the Nodes took, and ready how long from the first
	// create until every Node carried the ready label.
	created, ready time.Duration
	// requests are the controller's requests until every Node was ready, by verb, and
	// writes its writes until then, by method and path.
	requests, writes map[string]int
	// quietWrites are the controller's writes during the quiet period, by method and path.
	quietWrites map[string]int
	date        time.Time
	// load is the load average at the end of the quiet period.
	load string
}

// measure starts the controller, creates the Nodes, lets the simulated agents report
// each ReaperNode Ready, and counts the controller's requests.
func measure(ctx context.Context, restConfig *rest.Config, opts options) (*result, error) {
	res := &result{opts: opts, date: time.Now().UTC()}
	scheme, err := controllers.NewScheme()
	if err != nil {
		return nil, err
	}
	testConfig := rest.CopyConfig(restConfig)
	testConfig.QPS, testConfig.Burst = -1, 0
	c, err := client.New(testConfig, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("create the benchmark's client: %w", err)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", namespace, err)
	}

	counter := &requestCounter{}
	stop, err := startController(ctx, restConfig, counter, opts)
	if err != nil {
		return nil, err
	}
	defer stop()

	informers, stopAgents, err := startAgents(ctx, testConfig, c, opts)
	if err != nil {
		return nil, err
	}
	defer stopAgents()

	start := time.Now()
	if err := createNodes(ctx, c, opts); err != nil {
		return nil, err
	}
	res.created = time.Since(start)
	fmt.Printf("created %d Nodes in %s\n", opts.nodes, res.created.Round(time.Millisecond))

	if err := waitReady(ctx, informers, opts); err != nil {
		return nil, err
	}
	res.ready = time.Since(start)
	res.requests = counter.byVerb()
	res.writes = counter.writes()
	fmt.Printf("all %d Nodes ready after %s\n", opts.nodes, res.ready.Round(time.Millisecond))

	// Let the last writes and their watch events settle, then count.
	time.Sleep(2 * time.Second)
	counter.reset()
	time.Sleep(opts.quiet)
	res.quietWrites = counter.writes()
	res.load = loadAverage()
	return res, nil
}

func startController(ctx context.Context, restConfig *rest.Config, counter *requestCounter, opts options) (func(), error) {
	cfg := controllers.Config{Namespace: namespace}
	cfg.Agent.Image = "registry.test/reaper:bench"
	cfg.Default()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	config := rest.CopyConfig(restConfig)
	config.QPS, config.Burst = float32(opts.qps), opts.burst
	config.Wrap(counter.wrap)
	mgr, err := controllers.NewManager(config, controllers.Options{
		Config:                 cfg,
		MetricsBindAddress:     "0",
		HealthProbeBindAddress: "0",
		NodeWorkers:            opts.workers,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Println("controller:", err)
		}
	}, nil
}

// startAgents simulates one agent per node: for each new ReaperNode it adds the handler
// to the Node's status.runtimeHandlers, as the kubelet does once containerd serves it,
// and applies phase Ready to the ReaperNode's status, as the agent does.
// It returns the cache, which also holds the Nodes.
func startAgents(ctx context.Context, config *rest.Config, c client.Client, opts options) (cache.Cache, func(), error) {
	informers, err := cache.New(config, cache.Options{Scheme: c.Scheme()})
	if err != nil {
		return nil, nil, fmt.Errorf("create the agents' cache: %w", err)
	}
	if _, err := informers.GetInformer(ctx, &corev1.Node{}); err != nil {
		return nil, nil, fmt.Errorf("watch Nodes: %w", err)
	}
	informer, err := informers.GetInformer(ctx, &reaperv1alpha1.ReaperNode{})
	if err != nil {
		return nil, nil, fmt.Errorf("watch ReaperNodes: %w", err)
	}
	work := make(chan string, opts.nodes)
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if rn, ok := obj.(*reaperv1alpha1.ReaperNode); ok {
				work <- rn.Name
			}
		},
	}); err != nil {
		return nil, nil, err
	}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = informers.Start(ctx) })
	for range opts.agents {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case name := <-work:
					if err := reportReady(ctx, c, name); err != nil && ctx.Err() == nil {
						fmt.Println("agent:", err)
					}
				}
			}
		})
	}
	return informers, func() {
		cancel()
		wg.Wait()
	}, nil
}

func reportReady(ctx context.Context, c client.Client, name string) error {
	handlers := []byte(`{"status":{"runtimeHandlers":[{"name":"runc"},{"name":"reaper"},{"name":"reaper-protected"}]}}`)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Status().Patch(ctx, node, client.RawPatch(types.MergePatchType, handlers)); err != nil {
		return fmt.Errorf("set status.runtimeHandlers of Node %s: %w", name, err)
	}
	status := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": reaperv1alpha1.GroupVersion.String(),
		"kind":       "ReaperNode",
		"metadata":   map[string]any{"name": name},
		"status":     map[string]any{"phase": string(reaperv1alpha1.PhaseReady)},
	}}
	err := c.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(status), client.FieldOwner(agentManager), client.ForceOwnership)
	if err != nil {
		return fmt.Errorf("apply phase Ready to ReaperNode %s: %w", name, err)
	}
	return nil
}

func createNodes(ctx context.Context, c client.Client, opts options) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, opts.creators)
	for range opts.creators {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(opts.nodes) {
					return
				}
				node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
					Name:   fmt.Sprintf("node-%05d", i),
					Labels: map[string]string{"kubernetes.io/os": "linux"},
				}}
				if err := c.Create(ctx, node); err != nil {
					errs <- fmt.Errorf("create Node %s: %w", node.Name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// waitReady waits until every Node carries the ready label. It counts the labels in
// the benchmark's own cache of Nodes, because listing thousands of Nodes from the API
// server twice a second would load it more than the controller does.
func waitReady(ctx context.Context, informers cache.Cache, opts options) error {
	deadline := time.Now().Add(opts.timeout)
	last := -1
	for {
		nodes := &corev1.NodeList{}
		if err := informers.List(ctx, nodes, client.MatchingLabels{reaperv1alpha1.ReadyLabel: "true"}); err != nil {
			return fmt.Errorf("list the ready Nodes: %w", err)
		}
		if n := len(nodes.Items); n != last {
			fmt.Printf("  %d of %d Nodes ready\n", n, opts.nodes)
			last = n
		}
		if last == opts.nodes {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d Nodes were ready after %s", last, opts.nodes, opts.timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// requestCounter counts the controller's HTTP requests. A GET with watch=true counts as
// WATCH, and other GETs as GET.
type requestCounter struct {
	mu     sync.Mutex
	verbs  map[string]int
	writeN map[string]int
}

func (rc *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		verb := req.Method
		if verb == http.MethodGet && req.URL.Query().Get("watch") == "true" {
			verb = "WATCH"
		}
		rc.mu.Lock()
		if rc.verbs == nil {
			rc.verbs, rc.writeN = map[string]int{}, map[string]int{}
		}
		rc.verbs[verb]++
		if verb != http.MethodGet && verb != "WATCH" {
			rc.writeN[req.Method+" "+resourcePath(req.URL.Path)]++
		}
		rc.mu.Unlock()
		return rt.RoundTrip(req)
	})
}

// resourcePath drops the object name from an API path, so that the writes to 5000
// Nodes count as one path.
func resourcePath(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i, p := range parts {
		if p == "nodes" || p == "reapernodes" || p == "events" {
			if i+1 < len(parts) {
				parts[i+1] = "NAME"
			}
		}
	}
	return "/" + strings.Join(parts, "/")
}

func (rc *requestCounter) byVerb() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string]int{}
	for k, v := range rc.verbs {
		out[k] = v
	}
	return out
}

func (rc *requestCounter) writes() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string]int{}
	for k, v := range rc.writeN {
		out[k] = v
	}
	return out
}

func (rc *requestCounter) reset() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.verbs, rc.writeN = map[string]int{}, map[string]int{}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
