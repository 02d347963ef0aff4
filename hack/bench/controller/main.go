// Command controller measures reaper-controller against envtest's real kube-apiserver and
// etcd: how long it takes until every one of many Nodes carries the ready label, while
// simulated agents report each ReaperNode Ready, how many API requests that takes, and
// how many writes the controller makes afterwards, when nothing changes. It writes its
// section of docs/benchmarks.md. Run it with make bench-controller.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// options are the command's flags.
type options struct {
	nodes    int
	agents   int
	creators int
	workers  int
	qps      float64
	burst    int
	quiet    time.Duration
	timeout  time.Duration
	output   string
	command  string
}

func main() {
	var opts options
	flag.IntVar(&opts.nodes, "nodes", 5000, "Nodes to create, all selected")
	flag.IntVar(&opts.agents, "agents", 32, "simulated agents working at once, each reporting one ReaperNode Ready at a time")
	flag.IntVar(&opts.creators, "creators", 16, "goroutines that create the Nodes")
	flag.IntVar(&opts.workers, "workers", 8, "the controller's --node-workers")
	flag.Float64Var(&opts.qps, "qps", 1000, "the controller's --kube-api-qps")
	flag.IntVar(&opts.burst, "burst", 2000, "the controller's --kube-api-burst")
	flag.DurationVar(&opts.quiet, "quiet", 30*time.Second, "how long to count the controller's writes once every Node is ready")
	flag.DurationVar(&opts.timeout, "timeout", 10*time.Minute, "how long to wait for every Node to be ready")
	flag.StringVar(&opts.output, "output", "", "Markdown page whose controller section to write, such as docs/benchmarks.md (default: none)")
	flag.StringVar(&opts.command, "command", "make bench-controller", "the command that ran this benchmark, for the report")
	flag.Parse()

	if err := run(opts); err != nil {
		fmt.Fprintln(os.Stderr, "bench-controller:", err)
		os.Exit(1)
	}
}

func run(opts options) error {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return fmt.Errorf("KUBEBUILDER_ASSETS is not set: run make bench-controller, or export KUBEBUILDER_ASSETS=$(hack/envtest-bins.sh)")
	}
	// Only errors: a log line per Node would slow the controller down.
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))

	root, err := repoRoot()
	if err != nil {
		return err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	restConfig, err := env.Start()
	if err != nil {
		return fmt.Errorf("start envtest: %w", err)
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
		}
	}()

	ctx, cancel := context.WithCancel(ctrl.SetupSignalHandler())
	defer cancel()
	result, err := measure(ctx, restConfig, opts)
	if err != nil {
		return err
	}
	fmt.Print(result.text())
	if opts.output != "" {
		return writeSection(opts.output, result.markdown())
	}
	return nil
}

// repoRoot returns the folder of go.mod above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory: run bench-controller in the repository")
		}
		dir = parent
	}
}
