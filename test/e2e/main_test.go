package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	pauseImage       = "localhost/reaper/pause:3.10"
	placeholderImage = "localhost/reaper/placeholder:1"

	// readyTimeout bounds the wait for containerd's CRI service to report ready.
	readyTimeout = 30 * time.Second
)

// suite is the state shared by all tests: one private containerd and the CRI clients to it.
type suite struct {
	repoRoot string
	// dir is the directory given to hack/containerd-up.sh. Every containerd path lives under it.
	dir string
	// env holds the KEY=value lines hack/containerd-up.sh wrote to dir/env.
	env map[string]string
	// scriptLog receives the output of the up and down scripts.
	scriptLog string
	// handler is the runtime handler of the pods under test (E2E_HANDLER, default reaper).
	handler string
	// handlers lists the runtime handlers containerd reported at start-up.
	handlers []string
	// cgroupParent is the parent cgroup of every pod of this run, removed at tear-down.
	cgroupParent string

	conn    *grpc.ClientConn
	runtime runtimeapi.RuntimeServiceClient
	images  runtimeapi.ImageServiceClient

	// setupErr is the reason the suite could not start. Every test fails with it.
	setupErr error

	tearDownDone sync.Once
	tearDownErr  error
}

var (
	e2e     suite
	results = &resultLog{outcome: map[string]bool{}}
)

// resultLog records the outcome of each top-level test for the final summary line.
type resultLog struct {
	mu      sync.Mutex
	outcome map[string]bool // test name -> passed
}

func (r *resultLog) record(name string, passed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcome[name] = passed
}

func (r *resultLog) counts() (passed, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ok := range r.outcome {
		if ok {
			passed++
		} else {
			failed++
		}
	}
	return passed, failed
}

func (r *resultLog) failedNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for name, ok := range r.outcome {
		if !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	e2e.handler = os.Getenv("E2E_HANDLER")
	if e2e.handler == "" {
		e2e.handler = "reaper"
	}

	// An interrupt (Ctrl-C, or SIGTERM from a CI runner) still stops containerd and the pods.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-signals
		fmt.Fprintf(os.Stderr, "e2e: received %v, tearing down containerd\n", sig)
		if err := e2e.tearDownOnce(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: tear-down failed: %v\n", err)
		}
		printSummary()
		os.Exit(1)
	}()

	if err := e2e.setUp(); err != nil {
		e2e.setupErr = err
		fmt.Fprintf(os.Stderr, "e2e: setup failed: %v\n", err)
	}

	code := m.Run()

	if err := e2e.tearDownOnce(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: tear-down failed: %v\n", err)
		code = 1
	}

	if failed := printSummary(); failed > 0 || code != 0 {
		return 1
	}
	return 0
}

// printSummary prints the names of the failed tests and the final "N passed, N failed" line,
// and returns the number of failed tests.
func printSummary() int {
	passed, failed := results.counts()
	if failed > 0 {
		fmt.Printf("failed tests: %s\n", strings.Join(results.failedNames(), ", "))
	}
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	return failed
}

// start registers t in the summary and returns the suite. It fails t at once when the suite
// could not start, so a missing prerequisite shows up as a failure of every test.
func start(t *testing.T) *suite {
	t.Helper()
	t.Cleanup(func() {
		results.record(t.Name(), !t.Failed())
	})
	if e2e.setupErr != nil {
		t.Fatalf("e2e suite setup failed, so this test cannot run: %v", e2e.setupErr)
	}
	return &e2e
}

func (s *suite) setUp() error {
	if os.Geteuid() != 0 {
		return errors.New("the e2e suite must run as root because it starts containerd and host processes; rerun it with sudo")
	}

	root, err := findRepoRoot()
	if err != nil {
		return err
	}
	s.repoRoot = root

	// containerd's shim socket directory must be at most 38 characters long, so the directory
	// sits right under /tmp with a short name.
	dir, err := os.MkdirTemp("/tmp", "rpr")
	if err != nil {
		return fmt.Errorf("create the containerd directory: %w", err)
	}
	s.dir = dir
	s.cgroupParent = "/reaper-e2e-" + filepath.Base(dir)

	logFile, err := os.CreateTemp("", "reaper-e2e-scripts-*.log")
	if err != nil {
		return fmt.Errorf("create the script log: %w", err)
	}
	logFile.Close()
	s.scriptLog = logFile.Name()

	if err := s.runScript("containerd-up.sh"); err != nil {
		return err
	}

	s.env, err = readEnvFile(filepath.Join(dir, "env"))
	if err != nil {
		return err
	}
	address := s.env["CONTAINERD_ADDRESS"]
	if address == "" {
		return fmt.Errorf("%s/env has no CONTAINERD_ADDRESS line", dir)
	}
	if !strings.Contains(address, "://") {
		address = "unix://" + address
	}

	s.conn, err = grpc.NewClient(address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("create a CRI client for %s: %w", address, err)
	}
	s.runtime = runtimeapi.NewRuntimeServiceClient(s.conn)
	s.images = runtimeapi.NewImageServiceClient(s.conn)

	if err := s.waitRuntimeReady(); err != nil {
		return err
	}
	for _, image := range []string{pauseImage, placeholderImage} {
		if err := s.requireImage(image); err != nil {
			return err
		}
	}
	return nil
}

// runScript runs hack/NAME DIR as a child. Its output goes to a file, never to a pipe, because
// containerd is started in the background and would hold a pipe open after the script ends.
func (s *suite) runScript(name string) error {
	script := filepath.Join(s.repoRoot, "hack", name)
	if _, err := os.Stat(script); err != nil {
		return fmt.Errorf("the harness script is missing: %w", err)
	}

	out, err := os.OpenFile(s.scriptLog, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open the script log: %w", err)
	}
	defer out.Close()
	fmt.Fprintf(out, "=== %s %s\n", script, s.dir)

	cmd := exec.Command(script, s.dir)
	cmd.Dir = s.repoRoot
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s failed: %w; its output:\n%s", script, s.dir, err, tailFile(s.scriptLog, 40))
	}
	return nil
}

func (s *suite) waitRuntimeReady() error {
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := s.runtime.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
		cancel()
		if err != nil {
			lastErr = fmt.Errorf("CRI Status call failed: %w", err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		s.handlers = servedHandlers(resp)
		if ready := runtimeConditionTrue(resp.GetStatus(), runtimeapi.RuntimeReady); ready {
			return nil
		}
		lastErr = fmt.Errorf("containerd reports the %s condition false: %v", runtimeapi.RuntimeReady, resp.GetStatus().GetConditions())
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("containerd's CRI service was not ready after %s: %w", readyTimeout, lastErr)
}

// servedHandlers returns the runtime handlers of a CRI Status response. containerd 1.7
// does not list them, so for it they are the runtimes of the config in the verbose info.
func servedHandlers(resp *runtimeapi.StatusResponse) []string {
	var handlers []string
	for _, h := range resp.GetRuntimeHandlers() {
		handlers = append(handlers, h.GetName())
	}
	if len(handlers) > 0 {
		return handlers
	}

	var config struct {
		Containerd struct {
			Runtimes map[string]json.RawMessage `json:"runtimes"`
		} `json:"containerd"`
	}
	if err := json.Unmarshal([]byte(resp.GetInfo()["config"]), &config); err != nil {
		return nil
	}
	for name := range config.Containerd.Runtimes {
		handlers = append(handlers, name)
	}
	return handlers
}

func runtimeConditionTrue(status *runtimeapi.RuntimeStatus, condition string) bool {
	for _, c := range status.GetConditions() {
		if c.GetType() == condition {
			return c.GetStatus()
		}
	}
	return false
}

func (s *suite) requireImage(image string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := s.images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: image}})
	if err != nil {
		return fmt.Errorf("CRI ImageStatus for %s failed: %w", image, err)
	}
	if resp.GetImage() == nil {
		return fmt.Errorf("image %s is missing from containerd; hack/containerd-up.sh should import it", image)
	}
	return nil
}

// requireHandler fails t when containerd did not report handler at start-up.
func (s *suite) requireHandler(t *testing.T, handler string) {
	t.Helper()
	if !slices.Contains(s.handlers, handler) {
		t.Fatalf("containerd does not serve the runtime handler %q (it reports %v); hack/containerd-up.sh should register it", handler, s.handlers)
	}
}

// tearDownOnce runs tearDown the first time it is called, from the end of the run or from an
// interrupt. A concurrent caller waits until that tear-down has finished.
func (s *suite) tearDownOnce() error {
	s.tearDownDone.Do(func() { s.tearDownErr = s.tearDown() })
	return s.tearDownErr
}

// tearDown stops containerd and everything it started and removes the suite's directory and
// cgroups.
func (s *suite) tearDown() error {
	var errs []error
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	if s.dir != "" {
		// hack/containerd-down.sh removes the directory, so containerd's log is copied first
		// when it can explain a failure.
		if _, failed := results.counts(); failed > 0 || s.setupErr != nil {
			s.keepContainerdLog()
		}
		if err := s.runScript("containerd-down.sh"); err != nil {
			errs = append(errs, err)
		}
		if err := removeCgroupTree(s.cgroupParent); err != nil {
			errs = append(errs, err)
		}
		s.dir = ""
	}
	if s.scriptLog != "" {
		if len(errs) > 0 || s.setupErr != nil {
			fmt.Fprintf(os.Stderr, "e2e: script output kept in %s\n", s.scriptLog)
		} else {
			os.Remove(s.scriptLog)
		}
		s.scriptLog = ""
	}
	return errors.Join(errs...)
}

// keepContainerdLog copies containerd's log out of the suite directory and prints where.
func (s *suite) keepContainerdLog() {
	source := filepath.Join(s.dir, "containerd.log")
	data, err := os.ReadFile(source)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot keep containerd's log: %v\n", err)
		return
	}
	copied, err := os.CreateTemp("", "reaper-e2e-containerd-*.log")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot keep containerd's log: %v\n", err)
		return
	}
	defer copied.Close()
	if _, err := copied.Write(data); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot keep containerd's log: %v\n", err)
		return
	}
	fmt.Fprintf(os.Stderr, "e2e: containerd's log kept in %s\n", copied.Name())
}

// findRepoRoot returns the module root, two levels above this package.
func findRepoRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", fmt.Errorf("resolve the repository root: %w", err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("repository root not found above the test directory: %w", err)
	}
	return root, nil
}

// readEnvFile parses shell KEY=value lines, with optional quotes around the value.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the environment file written by hack/containerd-up.sh: %w", err)
	}
	defer f.Close()

	env := map[string]string{}
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s: invalid line %q, expected KEY=value", path, line)
		}
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		env[key] = value
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return env, nil
}

// tailFile returns the last n lines of a file, for error messages.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
