package controllers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
)

// Config is the configuration of what reaper-controller keeps in the cluster. The chart
// renders it into the ConfigMap that the controller reads with --config. Every field has
// a default, so an empty file is a working config.
type Config struct {
	// Namespace is the namespace of the installer DaemonSet. The controller's own
	// namespace, from --namespace, is the default.
	Namespace string `json:"namespace,omitempty"`

	// NodeSelector selects the Nodes that get Reaper. Empty selects every Linux Node.
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// RuntimeClasses names the two RuntimeClasses and the CRI runtime handlers they use.
	RuntimeClasses RuntimeClassConfig `json:"runtimeClasses,omitzero"`

	// Admission configures the ValidatingAdmissionPolicy that limits the RuntimeClasses
	// to opted-in namespaces.
	Admission AdmissionConfig `json:"admission,omitzero"`

	// Agent configures the installer DaemonSet.
	Agent AgentConfig `json:"agent,omitzero"`
}

// RuntimeClassConfig names the RuntimeClasses and their handlers.
type RuntimeClassConfig struct {
	// Name is the RuntimeClass of host-process pods, "reaper" by default.
	Name string `json:"name,omitempty"`
	// Handler is its CRI runtime handler, "reaper" by default.
	Handler string `json:"handler,omitempty"`
	// ProtectedName is the RuntimeClass whose pods see a protected host root,
	// "reaper-protected" by default; empty turns it off.
	ProtectedName *string `json:"protectedName,omitempty"`
	// ProtectedHandler is its CRI runtime handler, "reaper-protected" by default.
	ProtectedHandler string `json:"protectedHandler,omitempty"`
}

// AdmissionConfig configures the admission policy.
type AdmissionConfig struct {
	// Enabled turns the policy on; true by default. Without it any namespace may run
	// host-root pods.
	Enabled *bool `json:"enabled,omitempty"`
	// PolicyName names the ValidatingAdmissionPolicy and its binding, "reaper-runtimeclass"
	// by default.
	PolicyName string `json:"policyName,omitempty"`
	// NamespaceLabel is the label a namespace sets to "true" to use the RuntimeClasses,
	// reaper.dev/allowed by default.
	NamespaceLabel string `json:"namespaceLabel,omitempty"`
	// AgentPolicyName names the ValidatingAdmissionPolicy and its binding that let an
	// agent write only the ReaperNode of its own node, "reaper-agent-node" by default.
	// That policy is kept even when Enabled is false, because it guards Reaper itself.
	AgentPolicyName string `json:"agentPolicyName,omitempty"`
}

// AgentConfig configures the installer DaemonSet and the flags of its agent.
type AgentConfig struct {
	// Name of the DaemonSet, "reaper-agent" by default.
	Name string `json:"name,omitempty"`
	// Image carries all four binaries. The controller's own image, which reaper-controller
	// takes from --image, is the default.
	Image string `json:"image,omitempty"`
	// ImagePullPolicy of the agent container, IfNotPresent by default.
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`
	// ImagePullSecrets for a private registry.
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
	// ServiceAccountName of the agent pods, "reaper-agent" by default.
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// PriorityClassName of the agent pods, system-node-critical by default.
	PriorityClassName *string `json:"priorityClassName,omitempty"`
	// Tolerations of the agent pods. The default tolerates every taint, so a node that
	// is selected also gets its agent.
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// Resources of the agent container.
	Resources corev1.ResourceRequirements `json:"resources,omitzero"`
	// MaxUnavailable of the DaemonSet's rolling update: how many nodes update their agent
	// at once, 1 by default.
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`

	// HostPaths are the host folders mounted into the agent pod, each at the same path
	// below /host. The defaults are the folders of plain containerd: its config and socket
	// folders, the install and link folders, systemd's runtime folder and the lock folder.
	HostPaths []string `json:"hostPaths,omitempty"`
	// InstallDir is the host folder of the binaries, /opt/reaper/bin by default.
	InstallDir string `json:"installDir,omitempty"`
	// RestartMethod is the method by which the agent makes containerd load a changed
	// config, auto by default. A ReaperNode's spec.restartMethod overrides it for one node.
	RestartMethod reaperv1alpha1.RestartMethod `json:"restartMethod,omitempty"`
	// ContainerdConfig is the path of containerd's root config on the hosts; empty lets
	// the agent find it.
	ContainerdConfig string `json:"containerdConfig,omitempty"`
	// ContainerdPIDFile is the host file with containerd's pid, for the signal method.
	ContainerdPIDFile string `json:"containerdPIDFile,omitempty"`
	// ResyncPeriod is how often the agent checks its node for drift, 5m by default.
	ResyncPeriod metav1.Duration `json:"resyncPeriod,omitzero"`
	// ExtraArgs are appended to the agent's command line.
	ExtraArgs []string `json:"extraArgs,omitempty"`
}

// Defaults of Config.
const (
	DefaultRuntimeClass          = "reaper"
	DefaultProtectedRuntimeClass = "reaper-protected"
	DefaultPolicyName            = "reaper-runtimeclass"
	DefaultAgentPolicyName       = "reaper-agent-node"
	DefaultAgentName             = "reaper-agent"
	DefaultInstallDir            = "/opt/reaper/bin"
	DefaultResyncPeriod          = 5 * time.Minute
)

// DefaultHostPaths are the host folders the agent pod mounts unless the config names
// others: those of plain containerd under systemd.
var DefaultHostPaths = []string{
	"/etc/containerd", "/run/containerd", "/opt/reaper", "/usr/local/bin", "/run/systemd", "/run/reaper",
}

// LoadConfig reads the YAML file at path, fills in the defaults and checks it. An empty
// path gives the defaults. namespace and image fill in an empty namespace and agent.image:
// they are the controller's own namespace and image.
func LoadConfig(path, namespace, image string) (Config, error) {
	var cfg Config
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read controller config: %w", err)
		}
		if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
			return Config{}, fmt.Errorf("controller config %s: %w", path, err)
		}
	}
	if cfg.Namespace == "" {
		cfg.Namespace = namespace
	}
	if cfg.Agent.Image == "" {
		cfg.Agent.Image = image
	}
	cfg.Default()
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("controller config %s: %w", path, err)
	}
	return cfg, nil
}

// Default fills in every empty field.
func (c *Config) Default() {
	rc := &c.RuntimeClasses
	rc.Name = orDefault(rc.Name, DefaultRuntimeClass)
	rc.Handler = orDefault(rc.Handler, DefaultRuntimeClass)
	if rc.ProtectedName == nil {
		rc.ProtectedName = ptrTo(DefaultProtectedRuntimeClass)
	}
	rc.ProtectedHandler = orDefault(rc.ProtectedHandler, DefaultProtectedRuntimeClass)

	if c.Admission.Enabled == nil {
		c.Admission.Enabled = ptrTo(true)
	}
	c.Admission.PolicyName = orDefault(c.Admission.PolicyName, DefaultPolicyName)
	c.Admission.NamespaceLabel = orDefault(c.Admission.NamespaceLabel, reaperv1alpha1.DefaultOptInLabel)
	c.Admission.AgentPolicyName = orDefault(c.Admission.AgentPolicyName, DefaultAgentPolicyName)

	a := &c.Agent
	a.Name = orDefault(a.Name, DefaultAgentName)
	a.ImagePullPolicy = orDefault(a.ImagePullPolicy, corev1.PullIfNotPresent)
	a.ServiceAccountName = orDefault(a.ServiceAccountName, DefaultAgentName)
	if a.PriorityClassName == nil {
		a.PriorityClassName = ptrTo("system-node-critical")
	}
	if a.Tolerations == nil {
		a.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	}
	if a.MaxUnavailable == nil {
		a.MaxUnavailable = ptrTo(intstr.FromInt32(1))
	}
	if a.HostPaths == nil {
		a.HostPaths = DefaultHostPaths
	}
	a.InstallDir = orDefault(a.InstallDir, DefaultInstallDir)
	a.RestartMethod = orDefault(a.RestartMethod, reaperv1alpha1.RestartAuto)
	if a.ResyncPeriod.Duration == 0 {
		a.ResyncPeriod.Duration = DefaultResyncPeriod
	}
}

// Validate checks a defaulted config and names the first wrong field.
func (c *Config) Validate() error {
	var errs []error
	if c.Namespace == "" {
		errs = append(errs, errors.New("namespace is empty: set it, or start the controller with --namespace"))
	}
	for _, name := range []struct{ field, value string }{
		{"runtimeClasses.name", c.RuntimeClasses.Name},
		{"runtimeClasses.handler", c.RuntimeClasses.Handler},
		{"runtimeClasses.protectedHandler", c.RuntimeClasses.ProtectedHandler},
		{"admission.policyName", c.Admission.PolicyName},
		{"admission.agentPolicyName", c.Admission.AgentPolicyName},
		{"agent.name", c.Agent.Name},
	} {
		if msgs := validation.IsDNS1123Subdomain(name.value); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("%s %q: %s", name.field, name.value, strings.Join(msgs, "; ")))
		}
	}
	if p := *c.RuntimeClasses.ProtectedName; p != "" && p == c.RuntimeClasses.Name {
		errs = append(errs, fmt.Errorf("runtimeClasses.protectedName %q is also runtimeClasses.name: give the two RuntimeClasses different names", p))
	}
	if c.Admission.AgentPolicyName == c.Admission.PolicyName {
		errs = append(errs, fmt.Errorf("admission.agentPolicyName %q is also admission.policyName: give the two policies different names", c.Admission.PolicyName))
	}
	if c.Agent.Image == "" {
		errs = append(errs, errors.New("agent.image is empty: set it, or start the controller with --image"))
	}
	if msgs := validation.IsQualifiedName(c.Admission.NamespaceLabel); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("admission.namespaceLabel %q: %s", c.Admission.NamespaceLabel, strings.Join(msgs, "; ")))
	}
	switch c.Agent.RestartMethod {
	case reaperv1alpha1.RestartAuto, reaperv1alpha1.RestartSystemd, reaperv1alpha1.RestartSignal, reaperv1alpha1.RestartNone:
	default:
		errs = append(errs, fmt.Errorf("agent.restartMethod %q: use auto, systemd, signal or none", c.Agent.RestartMethod))
	}
	for _, p := range append([]string{c.Agent.InstallDir}, c.Agent.HostPaths...) {
		if !filepath.IsAbs(p) || filepath.Clean(p) == "/" {
			errs = append(errs, fmt.Errorf("agent host path %q: use an absolute folder other than /", p))
		}
	}
	return errors.Join(errs...)
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func ptrTo[T any](v T) *T { return &v }
