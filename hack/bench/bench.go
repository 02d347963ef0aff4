package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// bench is one benchmark run against the containerd that hack/containerd-up.sh started in
// opts.dir. It runs in one goroutine.
type bench struct {
	opts options
	cri  *criClient
	// handlers lists reaper first. Rounds alternate the order (see interleave).
	handlers []*handler
	// workDir is the sleeper's directory, DIR/bench when run.sh starts bench. It also holds the
	// pods' log directories and the clock directory.
	workDir  string
	clockDir string
	// pods are the pods created and not yet removed, by ID.
	pods map[string]*pod

	containerd string
	runc       string
}

func newBench(ctx context.Context, opts options) (*bench, error) {
	env, err := readEnvFile(filepath.Join(opts.dir, "env"))
	if err != nil {
		return nil, err
	}
	address := env["CONTAINERD_ADDRESS"]
	if address == "" {
		return nil, fmt.Errorf("%s/env has no CONTAINERD_ADDRESS line; rerun hack/containerd-up.sh %s", opts.dir, opts.dir)
	}
	if !filepath.IsAbs(opts.sleeper) || !underDir(opts.sleeper, opts.dir) {
		return nil, fmt.Errorf("-sleeper %s must be an absolute path inside %s", opts.sleeper, opts.dir)
	}

	b := &bench{
		opts:     opts,
		workDir:  filepath.Dir(opts.sleeper),
		clockDir: filepath.Join(filepath.Dir(opts.sleeper), "clock"),
		pods:     map[string]*pod{},
	}
	if err := os.MkdirAll(b.clockDir, 0o755); err != nil {
		return nil, fmt.Errorf("create the clock directory: %w", err)
	}
	b.handlers = []*handler{reaperHandler(opts.sleeper, b.clockDir), runcHandler(opts.sleeper, b.clockDir)}

	if b.runc, err = runcVersion(ctx, opts.runcBinary); err != nil {
		return nil, err
	}
	if b.cri, err = newCRIClient(address); err != nil {
		return nil, err
	}
	if b.containerd, err = b.cri.version(ctx); err != nil {
		b.cri.close()
		return nil, err
	}
	return b, nil
}

func (b *bench) close() {
	b.cri.close()
}

// handlerOrder returns the handlers in the order of one round: as listed in even rounds and
// reversed in odd ones.
func (b *bench) handlerOrder(round int) []*handler {
	if round%2 == 0 {
		return b.handlers
	}
	reversed := make([]*handler, 0, len(b.handlers))
	for i := len(b.handlers) - 1; i >= 0; i-- {
		reversed = append(reversed, b.handlers[i])
	}
	return reversed
}

// interleave calls sample once per handler in each of the warm-up and measured rounds and adds
// the values it returns, one per series, to the series. The order of the handlers alternates
// from round to round, so that a slow-down that lasts about one round affects both alike.
func (b *bench) interleave(ctx context.Context, series []*series, sample func(context.Context, *handler, int) ([]float64, error)) error {
	for round := range b.opts.warmup + b.opts.samples {
		for _, h := range b.handlerOrder(round) {
			if err := ctx.Err(); err != nil {
				return err
			}
			values, err := sample(ctx, h, round)
			if err != nil {
				return fmt.Errorf("handler %s, round %d: %w", h.name, round, err)
			}
			if round < b.opts.warmup {
				continue
			}
			for i, s := range series {
				s.add(h.name, values[i])
			}
		}
	}
	return nil
}

// runPod starts a hostNetwork pod named name and records it for removal.
func (b *bench) runPod(ctx context.Context, h *handler, name string) (*pod, error) {
	logDir := filepath.Join(b.workDir, "logs", name)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("create the log directory of pod %s: %w", name, err)
	}
	p, err := b.cri.runPod(ctx, h.name, podConfig(name, b.opts.cgroupParent, logDir))
	if err != nil {
		return nil, err
	}
	b.pods[p.id] = p
	return p, nil
}

func (b *bench) removePod(ctx context.Context, p *pod) error {
	if err := b.cri.removePod(ctx, p); err != nil {
		return err
	}
	delete(b.pods, p.id)
	return nil
}

// removeAllPods removes the pods that are left, also after an interrupt cancelled the run's
// context. hack/containerd-down.sh removes any that this misses.
func (b *bench) removeAllPods() error {
	var errs []error
	for _, p := range b.pods {
		if err := b.removePod(context.Background(), p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// startContainer creates and starts a container and checks that it runs.
func (b *bench) startContainer(ctx context.Context, p *pod, config *runtimeapi.ContainerConfig) (string, error) {
	id, err := b.cri.createContainer(ctx, p, config)
	if err != nil {
		return "", err
	}
	if err := b.cri.startContainer(ctx, id); err != nil {
		return "", err
	}
	if err := b.cri.requireRunning(ctx, id); err != nil {
		return "", err
	}
	return id, nil
}

// sleepContext sleeps for d, or until ctx is done.
func sleepContext(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readEnvFile parses the KEY=VALUE lines that hack/containerd-up.sh writes to DIR/env.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the environment file of hack/containerd-up.sh: %w", err)
	}
	defer f.Close()

	env := map[string]string{}
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s: invalid line %q, expected KEY=VALUE", path, line)
		}
		env[key] = value
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return env, nil
}
