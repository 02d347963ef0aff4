package controllers

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
)

const (
	// agentBinary is the path of reaper-installer in the image.
	agentBinary = "/usr/local/bin/reaper-installer"
	// hostRoot is the folder of the agent pod below which the host's folders are mounted.
	hostRoot = "/host"
	// agentHealthPort serves the agent's /healthz and /readyz.
	agentHealthPort = 8082
)

// managedLabels returns the labels of every object the controller keeps.
func managedLabels() map[string]string {
	return map[string]string{
		"app.kubernetes.io/part-of":    "reaper",
		"app.kubernetes.io/managed-by": FieldManager,
	}
}

// agentSelector returns the labels that the DaemonSet selects its pods by. A selector
// cannot change, so it holds no version.
func agentSelector(cfg Config) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":      cfg.Agent.Name,
		"app.kubernetes.io/component": "agent",
	}
}

// agentDaemonSet returns the installer DaemonSet: one agent pod on every Node that carries
// the agent label.
func agentDaemonSet(cfg Config) *appsv1ac.DaemonSetApplyConfiguration {
	podLabels := managedLabels()
	for k, v := range agentSelector(cfg) {
		podLabels[k] = v
	}
	return appsv1ac.DaemonSet(cfg.Agent.Name, cfg.Namespace).
		WithLabels(podLabels).
		WithSpec(appsv1ac.DaemonSetSpec().
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(agentSelector(cfg))).
			WithUpdateStrategy(appsv1ac.DaemonSetUpdateStrategy().
				WithType(appsv1.RollingUpdateDaemonSetStrategyType).
				WithRollingUpdate(appsv1ac.RollingUpdateDaemonSet().WithMaxUnavailable(*cfg.Agent.MaxUnavailable))).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(podLabels).
				WithSpec(agentPodSpec(cfg))))
}

// agentPodSpec returns the agent's pod. It shares the host's PID namespace, because
// systemd's private socket checks its peer's PID namespace and the agent reads the
// command lines of containerd and the kubelet from /proc. It runs as root without
// privileges, and reaches the host's files only through the configured hostPath folders.
func agentPodSpec(cfg Config) *corev1ac.PodSpecApplyConfiguration {
	a := cfg.Agent
	volumes, mounts := hostPathVolumes(a.HostPaths)

	spec := corev1ac.PodSpec().
		WithServiceAccountName(a.ServiceAccountName).
		WithHostPID(true).
		WithNodeSelector(map[string]string{osLabel: "linux", reaperv1alpha1.AgentLabel: "true"}).
		WithTolerations(tolerations(a.Tolerations)...).
		WithVolumes(volumes...).
		WithContainers(corev1ac.Container().
			WithName("agent").
			WithImage(a.Image).
			WithImagePullPolicy(a.ImagePullPolicy).
			WithCommand(agentBinary).
			WithArgs(agentArgs(cfg)...).
			WithEnv(corev1ac.EnvVar().WithName("NODE_NAME").WithValueFrom(
				corev1ac.EnvVarSource().WithFieldRef(corev1ac.ObjectFieldSelector().WithAPIVersion("v1").WithFieldPath("spec.nodeName")))).
			WithPorts(corev1ac.ContainerPort().WithName("health").WithContainerPort(agentHealthPort).WithProtocol(corev1.ProtocolTCP)).
			WithLivenessProbe(httpProbe("/healthz")).
			WithReadinessProbe(httpProbe("/readyz")).
			WithSecurityContext(corev1ac.SecurityContext().WithRunAsUser(0).WithPrivileged(false)).
			WithVolumeMounts(mounts...))
	if *a.PriorityClassName != "" {
		spec.WithPriorityClassName(*a.PriorityClassName)
	}
	for _, secret := range a.ImagePullSecrets {
		spec.WithImagePullSecrets(corev1ac.LocalObjectReference().WithName(secret.Name))
	}
	if resources := resourceRequirements(a.Resources); resources != nil {
		spec.Containers[0].WithResources(resources)
	}
	return spec
}

// agentArgs returns the agent's command line after the binary.
func agentArgs(cfg Config) []string {
	a := cfg.Agent
	protectedHandler := cfg.RuntimeClasses.ProtectedHandler
	if *cfg.RuntimeClasses.ProtectedName == "" {
		protectedHandler = ""
	}
	args := []string{
		"agent",
		"--node-name=$(NODE_NAME)",
		"--host-root=" + hostRoot,
		"--install-dir=" + a.InstallDir,
		"--restart=" + string(a.RestartMethod),
		"--handler=" + cfg.RuntimeClasses.Handler,
		"--protected-handler=" + protectedHandler,
		"--resync-period=" + a.ResyncPeriod.Duration.String(),
	}
	if a.ContainerdConfig != "" {
		args = append(args, "--containerd-config="+a.ContainerdConfig)
	}
	if a.ContainerdPIDFile != "" {
		args = append(args, "--containerd-pid-file="+a.ContainerdPIDFile)
	}
	args = append(args, fmt.Sprintf("--health-probe-bind-address=:%d", agentHealthPort))
	return append(args, a.ExtraArgs...)
}

func httpProbe(path string) *corev1ac.ProbeApplyConfiguration {
	return corev1ac.Probe().WithHTTPGet(corev1ac.HTTPGetAction().WithPath(path).WithPort(intstr.FromString("health")))
}

var nonNameChars = regexp.MustCompile(`[^a-z0-9]+`)

// hostPathVolumes returns one hostPath volume per host folder, and its mount at the same
// path below /host. Volume names come from the path, such as host-etc-containerd, with a
// number appended when two paths give the same name.
func hostPathVolumes(paths []string) ([]*corev1ac.VolumeApplyConfiguration, []*corev1ac.VolumeMountApplyConfiguration) {
	var volumes []*corev1ac.VolumeApplyConfiguration
	var mounts []*corev1ac.VolumeMountApplyConfiguration
	used := map[string]bool{}
	for i, p := range paths {
		name := "host-" + strings.Trim(nonNameChars.ReplaceAllString(strings.ToLower(p), "-"), "-")
		name = strings.TrimRight(name[:min(len(name), 55)], "-")
		if used[name] {
			name = fmt.Sprintf("%s-%d", name, i)
		}
		used[name] = true

		volumes = append(volumes, corev1ac.Volume().WithName(name).WithHostPath(
			corev1ac.HostPathVolumeSource().WithPath(p).WithType(corev1.HostPathDirectoryOrCreate)))
		mounts = append(mounts, corev1ac.VolumeMount().WithName(name).WithMountPath(path.Join(hostRoot, p)))
	}
	return volumes, mounts
}

func tolerations(in []corev1.Toleration) []*corev1ac.TolerationApplyConfiguration {
	out := make([]*corev1ac.TolerationApplyConfiguration, 0, len(in))
	for _, t := range in {
		ac := corev1ac.Toleration()
		if t.Key != "" {
			ac.WithKey(t.Key)
		}
		if t.Operator != "" {
			ac.WithOperator(t.Operator)
		}
		if t.Value != "" {
			ac.WithValue(t.Value)
		}
		if t.Effect != "" {
			ac.WithEffect(t.Effect)
		}
		if t.TolerationSeconds != nil {
			ac.WithTolerationSeconds(*t.TolerationSeconds)
		}
		out = append(out, ac)
	}
	return out
}

// resourceRequirements returns r as an apply configuration, or nil when r is empty.
func resourceRequirements(r corev1.ResourceRequirements) *corev1ac.ResourceRequirementsApplyConfiguration {
	if len(r.Limits) == 0 && len(r.Requests) == 0 {
		return nil
	}
	ac := corev1ac.ResourceRequirements()
	if len(r.Limits) > 0 {
		ac.WithLimits(r.Limits)
	}
	if len(r.Requests) > 0 {
		ac.WithRequests(r.Requests)
	}
	return ac
}
