package agent

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
	"reaper.dev/reaper/installer"
)

// agentConditions are the condition types the agent owns, in install order.
var agentConditions = []string{
	reaperv1alpha1.ConditionBinariesInstalled,
	reaperv1alpha1.ConditionContainerdConfigured,
	reaperv1alpha1.ConditionHandlerRegistered,
}

// failure is a failed install step: the condition it sets False, the reason and the
// message with the detail.
type failure struct {
	condition string
	reason    string
	message   string
}

// classify returns the condition and the reason of an install error.
func classify(err error) failure {
	f := failure{condition: reaperv1alpha1.ConditionContainerdConfigured, message: err.Error()}
	switch {
	case errors.Is(err, installer.ErrUnsupportedVersion):
		f.reason = reaperv1alpha1.ReasonUnsupportedConfigVersion
	case errors.Is(err, installer.ErrInvalidConfig), errors.Is(err, installer.ErrForeignHandler),
		errors.Is(err, installer.ErrNoDropInDir), errors.Is(err, errHostConfig):
		f.reason = reaperv1alpha1.ReasonInvalidConfig
	case errors.Is(err, installer.ErrRolledBack):
		f.reason = reaperv1alpha1.ReasonRolledBack
	case errors.Is(err, errRestart):
		f.reason = reaperv1alpha1.ReasonRestartFailed
	default:
		f.condition, f.reason = reaperv1alpha1.ConditionBinariesInstalled, reaperv1alpha1.ReasonInstallFailed
	}
	return f
}

// errHostConfig marks an invalid host configuration: the agent's flags, the spec's
// overrides, or a kubelet cgroup driver it cannot use.
var errHostConfig = errors.New("invalid host configuration")

// finding is the agent's result for one condition.
type finding struct {
	ok      bool
	reason  string
	message string
}

// statusFrom returns the agent's part of the status from what the run found, with the
// failure, when there is one, on its condition. It leaves observedGeneration to the
// caller.
func (r *Reconciler) statusFrom(run *run, f *failure) reaperv1alpha1.ReaperNodeStatus {
	findings := map[string]finding{
		reaperv1alpha1.ConditionBinariesInstalled:    run.binariesFinding(),
		reaperv1alpha1.ConditionContainerdConfigured: run.configFinding(),
		reaperv1alpha1.ConditionHandlerRegistered:    run.registeredFinding(),
	}

	status := reaperv1alpha1.ReaperNodeStatus{Containerd: run.containerdStatus()}
	allOK := true
	for _, conditionType := range agentConditions {
		found := findings[conditionType]
		allOK = allOK && found.ok
		status.Conditions = append(status.Conditions, conditionOf(conditionType, found, f))
	}
	if findings[reaperv1alpha1.ConditionBinariesInstalled].ok {
		status.InstalledVersion = r.Options.Version
	}

	switch {
	case f != nil && run.installedBefore:
		status.Phase = reaperv1alpha1.PhaseDegraded
	case f != nil:
		status.Phase = reaperv1alpha1.PhaseFailed
	case allOK:
		status.Phase = reaperv1alpha1.PhaseReady
	default:
		status.Phase = reaperv1alpha1.PhaseDegraded
	}
	return status
}

// conditionOf returns the condition of a finding. A failure sets its own condition False
// with its reason, and each other condition that is not met waits for it.
func conditionOf(conditionType string, found finding, f *failure) metav1.Condition {
	c := metav1.Condition{Type: conditionType, Status: metav1.ConditionTrue, Reason: reaperv1alpha1.ReasonSucceeded, Message: found.message}
	switch {
	case f != nil && f.condition == conditionType:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, f.reason, f.message
	case found.ok:
	case f != nil:
		c.Status, c.Reason = metav1.ConditionFalse, reaperv1alpha1.ReasonWaiting
		c.Message = fmt.Sprintf("waits for %s, where the install failed: %s", f.condition, found.message)
	default:
		c.Status, c.Reason = metav1.ConditionFalse, found.reason
	}
	return c
}

// binariesFinding checks that every binary is installed and unchanged since the install.
func (run *run) binariesFinding() finding {
	if run.status == nil {
		return run.unreadFinding()
	}
	dir := run.host.Config.InstallDir
	for _, binary := range run.status.Binaries {
		if binary.SHA256 == "" {
			return finding{reason: run.missingReason(), message: fmt.Sprintf("%s is not installed", hostPath(run.host, binary.Path))}
		}
	}
	if len(run.status.BinaryDrift) > 0 {
		return finding{reason: reaperv1alpha1.ReasonDrifted, message: strings.Join(run.status.BinaryDrift, "; ")}
	}

	message := fmt.Sprintf("%s are installed in %s", strings.Join(installer.Binaries, ", "), dir)
	if run.changed && len(run.binaryDrift) > 0 {
		message += "; the agent repaired this drift: " + strings.Join(run.binaryDrift, "; ")
	}
	return finding{ok: true, message: message}
}

// configFinding checks that containerd's config registers every handler, unchanged since
// the install, and that containerd has loaded it when the agent does not restart it.
func (run *run) configFinding() finding {
	if run.status == nil {
		return run.unreadFinding()
	}
	status, handlers := run.status, run.handlers()
	configDrift := slices.DeleteFunc(slices.Clone(status.Drift), func(d string) bool { return slices.Contains(status.BinaryDrift, d) })
	where := run.configLocation()

	if missing := slices.DeleteFunc(slices.Clone(handlers), func(h string) bool { return slices.Contains(status.Handlers, h) }); len(missing) > 0 {
		message := fmt.Sprintf("containerd's config %s does not register the runtime handler %s", run.host.Config.ContainerdConfig, strings.Join(missing, ", "))
		if len(configDrift) > 0 {
			message += ": " + strings.Join(configDrift, "; ")
		}
		return finding{reason: run.missingReason(), message: message}
	}
	if len(configDrift) > 0 {
		return finding{reason: reaperv1alpha1.ReasonDrifted, message: strings.Join(configDrift, "; ")}
	}
	if run.restartNone() && run.opts.Containerd != nil && !run.served() {
		return finding{reason: reaperv1alpha1.ReasonRestartRequired, message: fmt.Sprintf(
			"%s registers %s, and containerd has not loaded it: restart containerd, because the restart method is none", where, strings.Join(handlers, ", "))}
	}

	message := fmt.Sprintf("%s registers %s", where, strings.Join(handlers, ", "))
	if repaired := slices.DeleteFunc(slices.Clone(run.drift), func(d string) bool { return slices.Contains(run.binaryDrift, d) }); run.changed && len(repaired) > 0 {
		message += "; the agent repaired this drift: " + strings.Join(repaired, "; ")
	}
	return finding{ok: true, message: message}
}

// configLocation names the file that holds Reaper's handler tables.
func (run *run) configLocation() string {
	status := run.status
	switch {
	case status.DropIn != "":
		return "the drop-in " + hostPath(run.host, status.DropIn)
	case status.Template != "":
		return "the config template " + hostPath(run.host, status.Template)
	}
	return "containerd's config " + run.host.Config.ContainerdConfig
}

// registeredFinding checks that containerd's CRI lists every handler.
func (run *run) registeredFinding() finding {
	if run.host == nil {
		return run.unreadFinding()
	}
	socket := run.host.Config.ContainerdSocket
	containerd := run.opts.Containerd
	if containerd == nil {
		message := "containerd's CRI did not respond at " + socket
		if run.host.ContainerdErr != nil {
			message = run.host.ContainerdErr.Error()
		}
		return finding{reason: reaperv1alpha1.ReasonCRIUnavailable, message: message}
	}
	if !run.served() {
		return finding{reason: reaperv1alpha1.ReasonHandlerMissing, message: fmt.Sprintf("containerd %s at %s serves %s, not %s",
			containerd.Version, socket, listOrNone(containerd.Handlers), strings.Join(run.handlers(), ", "))}
	}
	return finding{ok: true, message: fmt.Sprintf("containerd %s at %s serves %s", containerd.Version, socket, strings.Join(run.handlers(), ", "))}
}

// unreadFinding is the finding of a host whose files could not be read.
func (run *run) unreadFinding() finding {
	err := run.statusErr
	if run.host == nil || err == nil {
		return finding{reason: reaperv1alpha1.ReasonInvalidConfig, message: "the agent could not read the host"}
	}
	return finding{reason: classify(err).reason, message: err.Error()}
}

// missingReason is the reason of a file the install did not write: Drifted when an
// install record lists it, else InstallFailed.
func (run *run) missingReason() string {
	if run.status != nil && run.status.Record != "" {
		return reaperv1alpha1.ReasonDrifted
	}
	return reaperv1alpha1.ReasonInstallFailed
}

// containerdStatus returns what the run found about containerd.
func (run *run) containerdStatus() reaperv1alpha1.ContainerdStatus {
	if run.host == nil {
		return reaperv1alpha1.ContainerdStatus{}
	}
	s := reaperv1alpha1.ContainerdStatus{
		ConfigPath:   run.host.Config.ContainerdConfig,
		Flavor:       flavorOf(run.host.Distro.Name),
		CgroupDriver: reaperv1alpha1.CgroupDriver(run.host.CgroupDriver.Driver),
	}
	if run.opts.Containerd != nil {
		s.Version = run.opts.Containerd.Version
	}
	if run.status != nil {
		s.ConfigVersion = int32(run.status.ConfigVersion)
		if run.status.DropIn != "" {
			s.DropInPath = hostPath(run.host, run.status.DropIn)
		}
	}
	return s
}

// flavorOf maps the installer's distribution name to the API's flavor.
func flavorOf(distro string) reaperv1alpha1.ContainerdFlavor {
	if distro == "containerd" {
		return reaperv1alpha1.FlavorPlain
	}
	return reaperv1alpha1.ContainerdFlavor(distro)
}

// hostPath returns the host's name of path, a path below the host root.
func hostPath(host *installer.Host, path string) string {
	root := filepath.Clean(host.Config.HostRoot)
	if root == "/" {
		return path
	}
	return "/" + strings.TrimPrefix(strings.TrimPrefix(path, root), "/")
}
