package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
	"reaper.dev/reaper/installer"
)

// run is one pass of the agent over its node: the host as the ReaperNode's spec and the
// agent's flags locate it, the installer options, and what the pass found there.
type run struct {
	node *reaperv1alpha1.ReaperNode
	// host is nil when the host configuration is invalid.
	host *installer.Host
	opts installer.Options

	// status is the state of the installer's files on the host, or nil with statusErr
	// when they could not be read. detectErr is the error of finding the cgroup driver.
	status    *installer.Status
	statusErr error
	detectErr error

	// installedBefore reports whether the host had an install record before this pass.
	installedBefore bool
	// drift is the list of differences from the install record before this pass, and
	// binaryDrift the part of it about the binaries. changed reports whether the pass
	// wrote files.
	drift       []string
	binaryDrift []string
	changed     bool
}

// newRun resolves the host of the node: the agent's host flags with the overrides of the
// ReaperNode's spec. The returned run is never nil, so a failure can be reported.
func (r *Reconciler) newRun(node *reaperv1alpha1.ReaperNode) (*run, error) {
	run := &run{node: node}
	config := r.Options.Host
	if node.Spec.ContainerdConfigPath != "" {
		config.ContainerdConfig = node.Spec.ContainerdConfigPath
	}
	if node.Spec.ContainerdSocket != "" {
		config.ContainerdSocket = node.Spec.ContainerdSocket
	}
	if node.Spec.RestartMethod != "" {
		config.RestartMethod = string(node.Spec.RestartMethod)
	}

	host, err := installer.ResolveHost(config)
	if err != nil {
		return run, fmt.Errorf("%w: %w", errHostConfig, err)
	}
	run.host = host
	run.opts = host.Options()
	run.opts.SourceDir = r.Options.SourceDir
	run.opts.Handlers = []string{r.Options.Handler}
	if node.Spec.RuntimeHandler != "" {
		run.opts.Handlers = []string{node.Spec.RuntimeHandler}
	}
	if r.Options.ProtectedHandler != "" {
		run.opts.ProtectedHandlers = []string{r.Options.ProtectedHandler}
		run.opts.ProtectedRoot = r.Options.ProtectedRoot
	}
	return run, nil
}

// lock takes the node's installer lock. The returned function releases it.
func (run *run) lock(ctx context.Context) (func(), error) {
	return run.host.Lock(run.opts, slogger(ctx))
}

// handlers returns the names of the runtime handlers the install registers.
func (run *run) handlers() []string {
	return append(slices.Clone(run.opts.Handlers), run.opts.ProtectedHandlers...)
}

// restartNone reports whether the agent leaves containerd's restart to the node's
// administrator.
func (run *run) restartNone() bool {
	return run.host.Config.RestartMethod == string(installer.RestartNone)
}

// inspect finds containerd, the kubelet's cgroup driver and the installer's files on the
// host, and writes nothing.
func (run *run) inspect(ctx context.Context) {
	run.detectErr = run.host.Detect(ctx, &run.opts)
	run.status, run.statusErr = installer.ReadStatus(run.opts)
	if run.status != nil {
		run.host.AddCgroupDriverDrift(run.status)
	}
}

// served reports whether the containerd that inspect found serves every handler.
func (run *run) served() bool {
	containerd := run.opts.Containerd
	return containerd != nil && !slices.ContainsFunc(run.handlers(), func(h string) bool { return !slices.Contains(containerd.Handlers, h) })
}

// errRestart marks an error of the restart method, found before the install changes
// anything.
var errRestart = errors.New("containerd cannot be restarted")

// install installs or repairs Reaper when the host differs from the plan or containerd
// does not serve the handlers yet, after setting the phase Installing. Either way it
// ends with inspect, for the report.
func (r *Reconciler) install(ctx context.Context, run *run) error {
	run.inspect(ctx)
	if run.detectErr != nil {
		return fmt.Errorf("%w: %w", errHostConfig, run.detectErr)
	}
	if run.statusErr != nil {
		return run.statusErr
	}
	run.installedBefore = run.status.Record != ""
	run.drift, run.binaryDrift = run.status.Drift, run.status.BinaryDrift

	plan, err := installer.PlanInstall(run.opts)
	if err != nil {
		return err
	}
	pending, err := plan.Pending()
	if err != nil {
		return err
	}
	// A containerd whose CRI does not respond is not restarted while the files are in
	// place, and the report gives the reason CRIUnavailable.
	unserved := run.opts.Containerd != nil && !run.served() && !run.restartNone()
	if !pending && len(run.drift) == 0 && !unserved {
		return nil
	}

	if err := r.checkRestart(ctx, run); err != nil {
		return err
	}
	if len(run.drift) > 0 {
		r.event(run.node, corev1.EventTypeWarning, reaperv1alpha1.ReasonDrifted, "Repair",
			"Reaper's files on node %s drifted, and the agent repairs them: %s", run.node.Name, truncate(strings.Join(run.drift, "; ")))
	}
	if err := r.applyStatus(ctx, run.node, installingStatus(run.node)); err != nil {
		return err
	}

	// A SIGTERM during the restart must not roll the config back, so the host change
	// runs to its end; the restart timeout bounds it.
	changed, err := run.host.Apply(context.WithoutCancel(ctx), slogger(ctx), plan)
	run.changed = changed || len(run.drift) > 0
	run.inspect(ctx)
	return err
}

// checkRestart fails, marked errRestart, when the restart method cannot restart
// containerd on this host, before the install changes anything.
func (r *Reconciler) checkRestart(ctx context.Context, run *run) error {
	restart, err := run.host.Restart()
	if err == nil && restart != nil {
		err = restart.Restarter.Check(ctx)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errRestart, err)
	}
	return nil
}
