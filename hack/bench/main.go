// Command bench measures the reaper runtime handler against runc on one containerd: pod start,
// container start, ExecSync, exit-to-event latency and shim memory. It needs a containerd started
// by hack/containerd-up.sh, prints a table and writes a Markdown report. hack/bench/run.sh starts
// and stops that containerd around it; `make bench` runs run.sh.
//
// It asserts nothing about the numbers: it reports medians and the ratio reaper/runc.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	dir          string
	samples      int
	warmup       int
	pods         int
	exitDelay    time.Duration
	settle       time.Duration
	sleeper      string
	runcBinary   string
	cgroupParent string
	output       string
	command      string
}

func main() {
	var opts options
	flag.StringVar(&opts.dir, "dir", "", "directory given to hack/containerd-up.sh; bench reads the containerd address from DIR/env (required)")
	flag.IntVar(&opts.samples, "samples", 20, "number of measured samples per handler for each latency measurement")
	flag.IntVar(&opts.warmup, "warmup", 1, "number of unmeasured rounds per handler before each latency measurement")
	flag.IntVar(&opts.pods, "pods", 10, "number of pods per handler that run at once for the shim memory measurement")
	flag.DurationVar(&opts.exitDelay, "exit-delay", 500*time.Millisecond, "how long the exiting container runs before it exits, so that StartContainer has returned by then")
	flag.DurationVar(&opts.settle, "settle", 2*time.Second, "time to wait after the memory measurement's pods have started before reading the shims' VmRSS")
	flag.StringVar(&opts.sleeper, "sleeper", "", "static binary built from hack/bench/sleeper, inside DIR; its directory also receives the pods' logs and the clock files (required)")
	flag.StringVar(&opts.cgroupParent, "cgroup-parent", "", "parent cgroup of every pod, such as /reaper-bench-x; run.sh removes it afterwards (required)")
	flag.StringVar(&opts.runcBinary, "runc", "", "runc binary that containerd uses; only its --version output is read (required)")
	flag.StringVar(&opts.output, "output", "", "Markdown report to write, such as docs/benchmarks.md (default: none)")
	flag.StringVar(&opts.command, "command", "", "command line to name in the report (default: this program's arguments)")
	flag.Parse()

	if err := run(opts); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(opts options) error {
	if err := opts.validate(); err != nil {
		return err
	}

	// An interrupt cancels the measurements. The pods created so far are still removed, with a
	// fresh context, before bench exits.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	b, err := newBench(ctx, opts)
	if err != nil {
		return err
	}
	defer b.close()

	report, runErr := b.measureAll(ctx)
	if cleanupErr := b.removeAllPods(); cleanupErr != nil {
		runErr = errors.Join(runErr, cleanupErr)
	}
	if runErr != nil && ctx.Err() != nil {
		return fmt.Errorf("interrupted, no report written: %w", runErr)
	}
	if runErr != nil {
		return runErr
	}

	fmt.Print(report.table())
	if opts.output == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(opts.output), 0o755); err != nil {
		return fmt.Errorf("create the report's directory: %w", err)
	}
	page := report.markdown() + keptSection(opts.output)
	if err := os.WriteFile(opts.output, []byte(page), 0o644); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	fmt.Printf("wrote %s\n", opts.output)
	return nil
}

// keptSection returns the section of the page at path that make bench-controller
// writes, between its start and end markers, so that rewriting the page keeps it. It
// returns "" when the page or the section is missing.
func keptSection(path string) string {
	const start, end = "<!-- controller benchmark: start -->", "<!-- controller benchmark: end -->"
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	page := string(data)
	i, j := strings.Index(page, start), strings.Index(page, end)
	if i < 0 || j < i {
		return ""
	}
	return "\n" + page[i:j+len(end)] + "\n"
}

func (o options) validate() error {
	switch {
	case o.dir == "":
		return errors.New("-dir is required: the directory given to hack/containerd-up.sh")
	case o.sleeper == "":
		return errors.New("-sleeper is required: a static build of hack/bench/sleeper")
	case !strings.HasPrefix(o.cgroupParent, "/"):
		return fmt.Errorf("-cgroup-parent %q must be an absolute cgroup path, such as /reaper-bench-x", o.cgroupParent)
	case o.runcBinary == "":
		return errors.New("-runc is required: the runc binary that containerd runs")
	case o.samples < 1:
		return fmt.Errorf("-samples is %d, it must be at least 1", o.samples)
	case o.warmup < 0:
		return fmt.Errorf("-warmup is %d, it must not be negative", o.warmup)
	case o.pods < 1:
		return fmt.Errorf("-pods is %d, it must be at least 1", o.pods)
	case o.exitDelay <= 0:
		return fmt.Errorf("-exit-delay is %s, it must be positive", o.exitDelay)
	}
	return nil
}
