package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReaperNode is the Reaper runtime on the Node of the same name: the settings that
// override the cluster-wide ones for that Node, and the state that Reaper's node agent
// reports. Reaper's controller creates one for each selected Node, and the Node owns it,
// so it is deleted with the Node. Deleting a ReaperNode uninstalls Reaper from its Node.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`,description="Step of Reaper's lifecycle that the node is in"
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.installedVersion`,description="Reaper version installed on the node"
// +kubebuilder:printcolumn:name="Containerd",type=string,JSONPath=`.status.containerd.version`,description="containerd version found on the node"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ReaperNode struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata. The name is the name of the Node.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec holds the settings of this node that differ from the cluster-wide ones.
	// +optional
	Spec ReaperNodeSpec `json:"spec,omitzero"`

	// status is the state of Reaper on the node, as the node agent last reported it.
	// +optional
	Status ReaperNodeStatus `json:"status,omitzero"`
}

// ReaperNodeSpec holds per-node overrides. A field left empty keeps the cluster-wide
// setting.
type ReaperNodeSpec struct {
	// runtimeHandler is the name of the containerd runtime handler that serves Reaper on
	// this node. Pods reach it only through a RuntimeClass whose handler has the same
	// name. It must be a lowercase RFC 1123 label, as RuntimeClass handlers are.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	RuntimeHandler string `json:"runtimeHandler,omitempty"`

	// containerdConfigPath is the absolute path on the node of containerd's root config
	// file. Set it when containerd runs with a config that the agent does not find by
	// itself.
	// +optional
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:Pattern=`^/`
	ContainerdConfigPath string `json:"containerdConfigPath,omitempty"`

	// containerdSocket is the absolute path on the node of containerd's socket, where the
	// agent checks through CRI that containerd serves the handler. Linux limits a Unix
	// socket path to 107 bytes, because sun_path holds 108 bytes with the final NUL.
	// +optional
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=107
	// +kubebuilder:validation:Pattern=`^/`
	ContainerdSocket string `json:"containerdSocket,omitempty"`

	// restartMethod sets how the agent makes containerd load a changed config.
	// "auto" uses systemd when the node runs it, else the signal method when the agent is
	// given containerd's pid file, and fails when neither applies.
	// "systemd" restarts containerd's systemd unit over D-Bus.
	// "signal" stops containerd with SIGTERM, and its supervisor starts it again.
	// "none" changes the config and leaves the restart to the node's administrator.
	// +optional
	RestartMethod RestartMethod `json:"restartMethod,omitempty"`

	// paused, when true, stops the agent from changing the node, so it installs, repairs and
	// upgrades nothing until paused is false again.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// RestartMethod is the way the agent makes containerd load a changed config.
// +kubebuilder:validation:Enum=auto;systemd;signal;none
type RestartMethod string

// The restart methods.
const (
	RestartAuto    RestartMethod = "auto"
	RestartSystemd RestartMethod = "systemd"
	RestartSignal  RestartMethod = "signal"
	RestartNone    RestartMethod = "none"
)

// ReaperNodeStatus is the state of Reaper on a node.
type ReaperNodeStatus struct {
	// phase is the step of Reaper's lifecycle that the node is in. The conditions give the
	// detail.
	// "Pending" means that no agent has reported on the node yet.
	// "Installing" means that the agent is installing the binaries, configuring containerd
	// or restarting it.
	// "Ready" means that pods of a Reaper RuntimeClass can run on the node.
	// "Degraded" means that Reaper was installed and a later check failed.
	// "Uninstalling" means that the ReaperNode is being deleted and the agent is reverting
	// the node.
	// "Failed" means that the install failed in a way that retrying does not fix.
	// +optional
	Phase ReaperNodePhase `json:"phase,omitempty"`

	// observedGeneration is the metadata.generation of the spec that the agent last
	// applied without error.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions are the results of the install steps and checks on the node, one per
	// type: BinariesInstalled, ContainerdConfigured, HandlerRegistered,
	// HandlerAdvertised and Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// installedVersion is the version of the Reaper binaries installed on the node.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	InstalledVersion string `json:"installedVersion,omitempty"`

	// containerd describes the containerd that the agent found on the node.
	// +optional
	Containerd ContainerdStatus `json:"containerd,omitzero"`
}

// ReaperNodePhase is a step of Reaper's lifecycle on a node.
// +kubebuilder:validation:Enum=Pending;Installing;Ready;Degraded;Uninstalling;Failed
type ReaperNodePhase string

const (
	// PhasePending means that no agent has reported on the node yet.
	PhasePending ReaperNodePhase = "Pending"
	// PhaseInstalling means that the agent is installing the binaries, configuring
	// containerd or restarting it.
	PhaseInstalling ReaperNodePhase = "Installing"
	// PhaseReady means that containerd serves the handler and the kubelet advertises it,
	// so pods of the Reaper RuntimeClass can run on the node.
	PhaseReady ReaperNodePhase = "Ready"
	// PhaseDegraded means that Reaper was installed and a later check failed, such as a
	// config manager removing Reaper's import from containerd's config.
	PhaseDegraded ReaperNodePhase = "Degraded"
	// PhaseUninstalling means that the ReaperNode is being deleted and the agent is
	// reverting the node.
	PhaseUninstalling ReaperNodePhase = "Uninstalling"
	// PhaseFailed means that the install failed in a way that retrying does not fix,
	// such as a containerd config of an unknown schema version.
	PhaseFailed ReaperNodePhase = "Failed"
)

// ContainerdStatus describes the containerd on a node.
type ContainerdStatus struct {
	// version is the version that containerd reports, such as v2.4.2 or v1.7.27-k3s1.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Version string `json:"version,omitempty"`

	// configPath is the absolute path on the node of containerd's root config file.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	ConfigPath string `json:"configPath,omitempty"`

	// configVersion is the schema version of the root config file, the value of its
	// top-level version key.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ConfigVersion int32 `json:"configVersion,omitempty"`

	// dropInPath is the absolute path on the node of the config file that Reaper owns
	// and containerd imports. It is empty when Reaper's settings are in the root config
	// or in a k3s or rke2 config template.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	DropInPath string `json:"dropInPath,omitempty"`

	// flavor is the distribution that containerd came with: "plain" for a containerd
	// installed on its own, or the Kubernetes distribution that bundles it.
	// +optional
	Flavor ContainerdFlavor `json:"flavor,omitempty"`

	// cgroupDriver is the kubelet's cgroup driver, which Reaper's handler uses too.
	// +optional
	CgroupDriver CgroupDriver `json:"cgroupDriver,omitempty"`
}

// ContainerdFlavor is the distribution that a containerd came with.
// +kubebuilder:validation:Enum=plain;k3s;rke2;k0s;microk8s
type ContainerdFlavor string

// The containerd flavors.
const (
	FlavorPlain    ContainerdFlavor = "plain"
	FlavorK3s      ContainerdFlavor = "k3s"
	FlavorRKE2     ContainerdFlavor = "rke2"
	FlavorK0s      ContainerdFlavor = "k0s"
	FlavorMicroK8s ContainerdFlavor = "microk8s"
)

// CgroupDriver is the way the kubelet manages cgroups.
// +kubebuilder:validation:Enum=systemd;cgroupfs
type CgroupDriver string

// The cgroup drivers.
const (
	CgroupDriverSystemd  CgroupDriver = "systemd"
	CgroupDriverCgroupfs CgroupDriver = "cgroupfs"
)

// ReaperNodeList is a list of ReaperNodes.
//
// +kubebuilder:object:root=true
type ReaperNodeList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the ReaperNodes.
	Items []ReaperNode `json:"items"`
}
