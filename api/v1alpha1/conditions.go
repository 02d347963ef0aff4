package v1alpha1

// Condition types of a ReaperNode's status.conditions. Each is True when its step is done
// and checked.
const (
	// ConditionBinariesInstalled reports whether the shim and runtime binaries of the
	// installed version are in the node's install directory.
	ConditionBinariesInstalled = "BinariesInstalled"
	// ConditionContainerdConfigured reports whether containerd's config registers the
	// Reaper handler and containerd has loaded that config.
	ConditionContainerdConfigured = "ContainerdConfigured"
	// ConditionHandlerRegistered reports whether containerd lists the handler through CRI.
	ConditionHandlerRegistered = "HandlerRegistered"
	// ConditionHandlerAdvertised reports whether the Node's status.runtimeHandlers lists
	// the handler, which the kubelet copies from CRI.
	ConditionHandlerAdvertised = "HandlerAdvertised"
	// ConditionReady reports whether pods can run on the node with Reaper: it is True
	// only while every other condition is True.
	ConditionReady = "Ready"
)

// Condition reasons of a ReaperNode. A condition's message carries the detail, such as
// the path or the error.
const (
	// ReasonSucceeded means that the step is done and checked.
	ReasonSucceeded = "Succeeded"
	// ReasonInProgress means that the agent is working on the step.
	ReasonInProgress = "InProgress"
	// ReasonWaiting means that the step waits for another condition to become True, and
	// the message names that condition.
	ReasonWaiting = "Waiting"
	// ReasonPaused means that spec.paused is true, so the agent leaves the node as it is.
	ReasonPaused = "Paused"
	// ReasonUninstalling means that the ReaperNode is being deleted and the agent is
	// reverting the step.
	ReasonUninstalling = "Uninstalling"
	// ReasonPodsRunning means that the ReaperNode is being deleted, but pods of Reaper's
	// runtime handlers still run on the node, so the agent waits for them to end before it
	// reverts the node.
	ReasonPodsRunning = "PodsRunning"

	// ReasonInstallFailed means that a binary could not be written to the install
	// directory.
	ReasonInstallFailed = "InstallFailed"
	// ReasonInvalidConfig means that containerd's config could not be parsed, so the
	// agent changed nothing.
	ReasonInvalidConfig = "InvalidConfig"
	// ReasonUnsupportedConfigVersion means that containerd's config has a schema version
	// that the agent does not know, so it changed nothing.
	ReasonUnsupportedConfigVersion = "UnsupportedConfigVersion"
	// ReasonDrifted means that something other than Reaper removed or changed what Reaper
	// wrote, such as the import of Reaper's drop-in file.
	ReasonDrifted = "Drifted"
	// ReasonRestartRequired means that the config is written but containerd has not
	// loaded it, because spec.restartMethod is "none".
	ReasonRestartRequired = "RestartRequired"
	// ReasonRestartFailed means that restarting containerd failed.
	ReasonRestartFailed = "RestartFailed"
	// ReasonRolledBack means that containerd did not come back with the new config, so
	// the agent restored the previous config and restarted containerd again.
	ReasonRolledBack = "RolledBack"

	// ReasonCRIUnavailable means that the agent could not reach containerd's CRI socket.
	ReasonCRIUnavailable = "CRIUnavailable"
	// ReasonHandlerMissing means that containerd, or the Node's status, does not list the
	// handler.
	ReasonHandlerMissing = "HandlerMissing"
)
